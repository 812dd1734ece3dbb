import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import ServiceLifecycle
import TollgateCollector
import TollgateConfig
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

/// The admin token of the test collector.
let adminToken = "test-admin-token-0123456789"

/// A running collector with its HTTP server (usage and admin API) and PUB socket.
struct RunningAdminCollector: Sendable {
    let service: CollectorService
    let redis: RedisServer
    let baseURL: String
    let publishEndpoint: String

    /// Sends an HTTP request to the collector; returns the status and the JSON object it answered.
    func request(_ method: String, _ path: String, body: String? = nil, token: String? = adminToken) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: self.baseURL + path)!, timeoutInterval: 10)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body { request.httpBody = Data(body.utf8) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        return (status, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }

    /// The registry version in Redis.
    func version() throws -> UInt64 {
        try self.redis.withConnection { try KeyRegistry().version(on: $0) }
    }
}

/// Runs `body` against an in-process collector with its HTTP server, over real Redis, HTTP and ZeroMQ.
func withAdminCollector<T: Sendable>(
    token: String? = adminToken,
    _ body: (RunningAdminCollector) async throws -> T
) async throws -> T {
    _ = TestMetrics.shared
    let server = try RedisServer()
    defer { server.cleanUp() }
    var configuration = try testConfiguration(id: "collector-admin-test", redis: server)
    configuration.collector.httpListen = "127.0.0.1:\(try FreePort.make())"
    configuration.collector.adminToken = token
    var logger = Logger(label: "collector-admin-test")
    logger.logLevel = .warning
    let service = CollectorService(configuration: configuration, logger: logger)
    let client = RedisClient(configuration: service.ingestConfiguration.redis)
    let http = try CollectorHTTP.makeApplication(
        listen: configuration.collector.httpListen,
        reader: RedisUsageReader(client: client),
        keyNames: [:],
        admin: AdminAPI(token: token, client: client, publisher: service.publisher),
        health: { true },
        renderMetrics: { "" },
        logger: logger
    )
    let group = ServiceGroup(configuration: .init(services: [.init(service: service), .init(service: http)], gracefulShutdownSignals: [], logger: logger))
    let running = RunningAdminCollector(
        service: service, redis: server, baseURL: "http://\(configuration.collector.httpListen)",
        publishEndpoint: configuration.collector.publishBind
    )
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result: Result<T, any Error>
        do {
            try await waitUntilServing(running)
            result = .success(try await body(running))
        } catch {
            result = .failure(error)
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        await client.shutdown()
        return try result.get()
    }
}

/// Waits until the HTTP server answers and the publisher is bound (both start in the group).
private func waitUntilServing(_ running: RunningAdminCollector) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if running.service.publisher.boundEndpoint != nil, (try? await running.request("GET", "/healthz", token: nil))?.0 == 200 {
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw SubscriberTimeout(what: "the collector to serve HTTP")
}

/// Runs `body` with a live subscriber to every update of `collector`.
func withSubscriber<T>(_ collector: RunningAdminCollector, _ body: (UpdateSubscriber) async throws -> T) async throws -> T {
    let subscriber = UpdateSubscriber(endpoint: collector.publishEndpoint)
    do {
        try await subscriber.ready { collector.service.publisher.publish($0) }
        let result = try await body(subscriber)
        await subscriber.stop()
        return result
    } catch {
        await subscriber.stop()
        throw error
    }
}
