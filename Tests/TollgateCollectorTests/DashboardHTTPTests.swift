import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import Testing
import TollgateCollector
import TollgateCore
import TollgateRedis
import TollgateTestSupport

/// The collector's HTTP app with a dashboard over `server`, on a free port; `body` gets its base URL.
func withDashboardHTTP<T: Sendable>(
    server: RedisServer, token: String?, ready: @escaping @Sendable () -> Bool = { true }, _ body: (String) async throws -> T
) async throws -> T {
    var configuration = server.configuration
    configuration.connectTimeout = .milliseconds(300)
    configuration.commandTimeout = .milliseconds(500)
    let client = RedisClient(configuration: configuration)
    var logger = Logger(label: "dashboard-test")
    logger.logLevel = .warning
    let listen = "127.0.0.1:\(try FreePort.make())"
    var dashboard = Dashboard(
        source: DashboardSource(collectorID: "collector-test", client: client, fleet: FleetTable(), ingestRate: IngestRate(),
                                clock: FixedTime(DashboardFixture.now)),
        token: token
    )
    dashboard.cacheFor = .zero
    let app = try CollectorHTTP.makeApplication(
        listen: listen, reader: RedisUsageReader(client: client), keyNames: [:], dashboard: dashboard,
        health: { true }, ready: ready, renderMetrics: { "" }, logger: logger
    )
    let group = ServiceGroup(configuration: .init(services: [.init(service: app)], gracefulShutdownSignals: [], logger: logger))
    let base = "http://\(listen)"
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result: Result<T, any Error>
        do {
            let deadline = ContinuousClock.now + .seconds(10)
            while (try? await httpGet(base + "/healthz"))?.status != 200 {
                guard ContinuousClock.now < deadline else { throw SubscriberTimeout(what: "the dashboard's HTTP server") }
                try await Task.sleep(for: .milliseconds(10))
            }
            result = .success(try await body(base))
        } catch {
            result = .failure(error)
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        await client.shutdown()
        return try result.get()
    }
}

/// A GET's status, headers (lower-cased names) and body, over a plain socket on its own thread.
///
/// Not URLSession: swift-corelibs-foundation's never returns from a 401 that carries a
/// `WWW-Authenticate` challenge when no credential is at hand, which is what these tests provoke.
func httpGet(_ url: String, authorization: String? = nil) async throws -> (status: Int, headers: [String: String], body: Data) {
    guard let parsed = URL(string: url), let port = parsed.port else { throw SubscriberTimeout(what: "a URL with a port: \(url)") }
    var request = "GET \(parsed.path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    if let authorization { request += "Authorization: \(authorization)\r\n" }
    request += "\r\n"
    let bytes = Array(request.utf8)
    let raw = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8], any Error>) in
        Thread.detachNewThread { continuation.resume(with: Result { try blockingExchange(port: port, request: bytes) }) }
    }
    let separator: [UInt8] = Array("\r\n\r\n".utf8)
    guard let split = raw.indices.first(where: { raw[$0...].starts(with: separator) }) else {
        throw SubscriberTimeout(what: "an HTTP response (got \(raw.count) bytes)")
    }
    let lines = String(decoding: raw[..<split], as: UTF8.self).components(separatedBy: "\r\n")
    let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var body = Array(raw[(split + separator.count)...])
    if headers["transfer-encoding"] == "chunked" { body = dechunk(body) }
    return (status, headers, Data(body))
}

/// Sends `request` to 127.0.0.1:`port` and reads until the server closes (blocking; 10 s timeouts).
private func blockingExchange(port: Int, request: [UInt8]) throws -> [UInt8] {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SubscriberTimeout(what: "a socket") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0, request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else {
        throw SubscriberTimeout(what: "a connection to port \(port)")
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { break }
        response += buffer[..<n]
    }
    return response
}

/// The payload of a chunked body.
private func dechunk(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var index = 0
    while let end = bytes[index...].firstIndex(of: 0x0D), let size = Int(String(decoding: bytes[index..<end], as: UTF8.self), radix: 16), size > 0 {
        let start = end + 2
        guard start + size <= bytes.count else { break }
        out += bytes[start..<(start + size)]
        index = start + size + 2
        guard index < bytes.count else { break }
    }
    return out
}

extension CollectorComponentTests {
    @Suite("Dashboard HTTP: real HTTP and redis-server", .serialized)
    struct DashboardHTTPTests {
        static let token = "dashboard-token-0123456789"

        @Test("without a token both routes are open; the page is self-contained and the state is snake_case JSON")
        func open() async throws {
            try await withRedisServer { server in
                try DashboardFixture.seed(server)
                try await withDashboardHTTP(server: server, token: nil) { base in
                    let page = try await httpGet(base + "/dashboard")
                    #expect(page.status == 200 && page.headers["content-type"] == "text/html; charset=utf-8")
                    #expect(page.headers["content-security-policy"]?.contains("default-src 'none'") == true)
                    let html = String(decoding: page.body, as: UTF8.self)
                    #expect(html.contains("/v1/dashboard/state"))
                    // Nothing is loaded from elsewhere: the only absolute URL is the SVG namespace name.
                    let urls = html.ranges(of: /https?:\/\/[^"' )]+/).map { String(html[$0]) }
                    #expect(Set(urls) == ["http://www.w3.org/2000/svg"])
                    #expect(!html.contains("<link") && !html.contains("src="))

                    let state = try await httpGet(base + "/v1/dashboard/state")
                    #expect(state.status == 200 && state.headers["content-type"] == "application/json")
                    let json = try #require(try JSONSerialization.jsonObject(with: state.body) as? [String: Any])
                    #expect(Set(json.keys) == [
                        "as_of", "asset", "collector", "ingest", "keys", "keys_scanned", "keys_total", "settlements", "sidecars", "sidecars_total",
                    ])
                    let keys = try #require(json["keys"] as? [[String: Any]])
                    #expect(keys.map { $0["name"] as? String } == ["charlie", "alpha", "bravo", "delta"])
                    let feature = try #require((keys.first?["features"] as? [[String: Any]])?.first)
                    #expect(feature["overage_charge"] as? String == "100000" && feature["overage_units"] as? Int == 200)
                    #expect((json["ingest"] as? [String: Any])?["calls_per_second_history"] is [Any])
                }
            }
        }

        @Test("with a token: 401 and a Basic challenge without it or with a wrong one; Basic or Bearer with it pass")
        func guarded() async throws {
            try await withRedisServer { server in
                try DashboardFixture.seed(server)
                try await withDashboardHTTP(server: server, token: Self.token) { base in
                    for path in ["/dashboard", "/v1/dashboard/state"] {
                        let refused = try await httpGet(base + path)
                        #expect(refused.status == 401, "\(path)")
                        #expect(refused.headers["www-authenticate"]?.hasPrefix("Basic realm=") == true)
                        let wrong = "Basic " + Data("ops:not-the-token-at-all".utf8).base64EncodedString()
                        #expect(try await httpGet(base + path, authorization: wrong).status == 401)
                        #expect(try await httpGet(base + path, authorization: "Basic %%%garbage").status == 401)
                        let basic = "Basic " + Data("ops:\(Self.token)".utf8).base64EncodedString()
                        #expect(try await httpGet(base + path, authorization: basic).status == 200)
                        #expect(try await httpGet(base + path, authorization: "Bearer \(Self.token)").status == 200)
                    }
                    // The rest of the API is not affected by the dashboard's token.
                    #expect(try await httpGet(base + "/healthz").status == 200)
                }
            }
        }

        @Test("/healthz answers 503 starting until the collector is ready, then 200")
        func healthzStarting() async throws {
            try await withRedisServer { server in
                let ready = Readiness()
                ready.set(true)  // the harness waits for a 200 first
                try await withDashboardHTTP(server: server, token: nil, ready: { ready.isReady }) { base in
                    ready.set(false)
                    let starting = try await httpGet(base + "/healthz")
                    #expect(starting.status == 503)
                    let json = try JSONSerialization.jsonObject(with: starting.body) as? [String: String]
                    #expect(json?["status"] == "starting")
                    ready.set(true)
                    #expect(try await httpGet(base + "/healthz").status == 200)
                }
            }
        }

        @Test("Redis down: the state answers 503 redis_unavailable, the page still loads")
        func redisDown() async throws {
            try await withRedisServer { server in
                try DashboardFixture.seed(server)
                try await withDashboardHTTP(server: server, token: nil) { base in
                    server.kill()
                    let state = try await httpGet(base + "/v1/dashboard/state")
                    #expect(state.status == 503)
                    let json = try JSONSerialization.jsonObject(with: state.body) as? [String: String]
                    #expect(json?["error"] == "redis_unavailable")
                    #expect(try await httpGet(base + "/dashboard").status == 200)
                }
            }
        }
    }
}
