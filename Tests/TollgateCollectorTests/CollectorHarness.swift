import Logging
import ServiceLifecycle
import TollgateCollector
import TollgateConfig
import TollgateCore
import TollgateStore
import TollgateTestSupport

/// The API keys the test collector knows.
enum TestKeys {
    static let freeKey = "tg_test_free_key_0001"
    static let proKey = "tg_test_pro_key_0002"
    static var freeID: String { APIKeyHasher.keyID(for: freeKey) }
    static var proID: String { APIKeyHasher.keyID(for: proKey) }

    static let free = Plan(name: "free", features: [.apiCall: .metered(MeteredFeature(limit: 1_000, reset: .day))])
    static let pro = Plan(name: "pro", features: [
        .apiCall: .metered(MeteredFeature(limit: 100_000, reset: .month)),
        "export": .boolean(enabled: true),
    ])
    static let proOverrides = KeyOverrides(limits: [.apiCall: 250_000])
}

/// A running collector and the Redis behind it.
struct RunningCollector: Sendable {
    let service: CollectorService
    let redis: RedisServer
    let endpoint: String
}

/// A collector configuration on free ports against `redis`, with the free and pro test keys.
func testConfiguration(id: String, redis: RedisServer) throws -> TollgateConfiguration {
    var configuration = TollgateConfiguration()
    configuration.collector.id = id
    configuration.collector.routerBind = "tcp://127.0.0.1:\(try FreePort.make())"
    configuration.collector.publishBind = "tcp://127.0.0.1:\(try FreePort.make())"
    configuration.redis.host = redis.host
    configuration.redis.port = redis.port
    configuration.redis.connectTimeoutMs = 500
    configuration.plans = ["free": TestKeys.free, "pro": TestKeys.pro]
    configuration.keys = [
        KeyRecord(id: TestKeys.freeID, name: "demo-free", plan: "free"),
        KeyRecord(id: TestKeys.proID, name: "demo-pro", plan: "pro", overrides: TestKeys.proOverrides),
    ]
    return configuration
}

/// Runs `body` against an in-process collector (real Redis, real ZeroMQ on a free port), then shuts it down gracefully.
func withCollector<T: Sendable>(
    redisOptions: RedisServer.Options = .init(),
    configure: (inout TollgateConfiguration) -> Void = { _ in },
    clock: any TollgateClock = WallClock(),
    _ body: (RunningCollector) async throws -> T
) async throws -> T {
    _ = TestMetrics.shared
    let server = try RedisServer(options: redisOptions)
    defer { server.cleanUp() }
    var configuration = try testConfiguration(id: "collector-test", redis: server)
    configure(&configuration)
    var logger = Logger(label: "collector-test")
    logger.logLevel = .warning
    let service = CollectorService(configuration: configuration, logger: logger, clock: clock)
    let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [], logger: logger))
    let running = RunningCollector(service: service, redis: server, endpoint: configuration.collector.routerBind)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result: Result<T, any Error>
        do {
            result = .success(try await body(running))
        } catch {
            result = .failure(error)
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return try result.get()
    }
}
