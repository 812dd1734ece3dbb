import Foundation
import NIOCore
import NIOPosix
import TollgateConfig
import TollgateCore
import TollgateSidecar
import TollgateTestSupport

/// A recorder that keeps every event, for exact comparisons.
final class RecordingUsageRecorder: UsageRecorder, @unchecked Sendable {  // @unchecked: all state behind `lock`.
    private let lock = NSLock()
    private var stored: [(event: UsageEvent, extra: [String: UInt64])] = []

    func record(_ event: UsageEvent, extraUnits: [String: UInt64]) {
        self.lock.lock()
        self.stored.append((event, extraUnits))
        self.lock.unlock()
    }

    var events: [(event: UsageEvent, extra: [String: UInt64])] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.stored
    }
}

/// Test keys: raw key → plan.
enum TestKeys {
    static let alice = "tg_test_alice_0123456789"
    static let bob = "tg_test_bob_0123456789"
    static let carol = "tg_test_carol_0123456789"
    static let dave = "tg_test_dave_0123456789"
    static let all = [alice, bob, carol, dave]

    static let resolver = InMemoryPrincipalResolver(
        plansByKeyID: Dictionary(uniqueKeysWithValues: all.map { (APIKeyHasher.keyID(for: $0), "pro") })
    )

    static func id(_ key: String) -> String { APIKeyHasher.keyID(for: key) }
}

/// A running DemoUpstream + ProxyServer pair and a client event loop group.
struct ProxyHarness: Sendable {
    let proxy: ProxyServer
    let proxyPort: Int
    let upstreamPort: Int
    let recorder: RecordingUsageRecorder
    let clientGroup: MultiThreadedEventLoopGroup

    func client() async throws -> TestHTTPClient {
        try await TestHTTPClient.connect(port: self.proxyPort, group: self.clientGroup)
    }

    func raw() async throws -> RawTCPClient {
        try await RawTCPClient.connect(port: self.proxyPort, group: self.clientGroup)
    }

    /// One request on a fresh connection.
    func send(_ request: TestRequest) async throws -> TestResponse {
        let client = try await self.client()
        do {
            let response = try await client.send(request)
            await client.close()
            return response
        } catch {
            await client.close()
            throw error
        }
    }
}

/// Starts an upstream and a proxy in front of it, runs `body`, and shuts everything down.
func withProxy<T>(
    upstreamDown: Bool = false,
    resolver: any PrincipalResolver = TestKeys.resolver,
    configure: (inout ProxyConfiguration) -> Void = { _ in },
    _ body: (ProxyHarness) async throws -> T
) async throws -> T {
    let upstream = DemoUpstream(threads: 1)
    var upstreamPort = try await upstream.start(host: "127.0.0.1", port: 0)
    if upstreamDown {
        await upstream.shutdown()
        upstreamPort = try FreePort.make()
    }
    var configuration = ProxyConfiguration()
    configuration.listenPort = 0
    configuration.upstreamPort = upstreamPort
    configuration.eventLoopThreads = 2
    configuration.shutdownGracePeriod = .seconds(2)
    configure(&configuration)
    let recorder = RecordingUsageRecorder()
    let proxy = ProxyServer(configuration: configuration, resolver: resolver, recorder: recorder)
    let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    do {
        let port = try await proxy.start()
        let harness = ProxyHarness(proxy: proxy, proxyPort: port, upstreamPort: upstreamPort, recorder: recorder, clientGroup: clientGroup)
        let result = try await body(harness)
        await proxy.shutdown()
        await upstream.shutdown()
        try? await clientGroup.shutdownGracefully()
        return result
    } catch {
        await proxy.shutdown()
        await upstream.shutdown()
        try? await clientGroup.shutdownGracefully()
        throw error
    }
}

func bearer(_ key: String) -> (String, String) { ("Authorization", "Bearer \(key)") }
