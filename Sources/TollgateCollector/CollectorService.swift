import Logging
import ServiceLifecycle
import TollgateConfig
import TollgateCore
import TollgateRedis
import TollgateStore

/// The collector as a `Service`: loads the registry, then runs the ingest thread until graceful shutdown.
///
/// Threading: `Sendable`. `run()` does no blocking work on the cooperative pool: the registry is
/// loaded through a `RedisClient` (its own thread) and ingest runs on `CollectorIngest`'s thread.
/// If Redis cannot be reached at start, `run()` throws and the service group ends: the collector
/// must not serve lookups from an empty registry.
///
/// ```swift
/// let collector = CollectorService(configuration: config, logger: logger)
/// let group = ServiceGroup(configuration: .init(services: [collector], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// ```
public struct CollectorService: Service {
    /// The ingest settings derived from the configuration.
    public let ingestConfiguration: CollectorIngestConfiguration
    /// The sidecars this collector has heard from; read it from the HTTP API.
    public let fleet: FleetTable
    private let plans: [String: Plan]
    private let keys: [KeyRecord]
    private let logger: Logger

    /// A collector for `configuration`; nothing starts before `run()`.
    public init(
        configuration: TollgateConfiguration, logger: Logger,
        clock: any TollgateClock = WallClock(), updates: (any QuotaUpdateSink)? = nil
    ) {
        var ingest = CollectorIngestConfiguration(configuration)
        ingest.clock = clock
        ingest.updates = updates
        self.ingestConfiguration = ingest
        self.fleet = FleetTable(staleAfter: self.ingestConfiguration.sidecarStaleAfter)
        self.plans = configuration.plans
        self.keys = configuration.keys
        self.logger = logger
    }

    /// Loads plans and keys into Redis, serves until graceful shutdown or cancellation, then stops and joins the thread.
    public func run() async throws {
        try await self.loadRegistry()
        let ingest = try await CollectorIngest.start(configuration: self.ingestConfiguration, fleet: self.fleet, logger: self.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Returns on graceful shutdown, or throws when the task is cancelled: stop either way.
                try? await gracefulShutdown()
            }
            group.addTask {
                // Ends early only if the loop failed; then its error ends the service.
                try await ingest.join()
            }
            defer { ingest.requestStop() }
            do {
                try await group.next()
            } catch {
                ingest.requestStop()
                group.cancelAll()
                throw error
            }
            ingest.requestStop()
            group.cancelAll()
            try await group.waitForAll()
        }
    }

    private func loadRegistry() async throws {
        let client = RedisClient(configuration: self.ingestConfiguration.redis)
        do {
            let (plans, keys) = (self.plans, self.keys)
            let version = try await client.withConnection { connection in
                try KeyRegistry().load(plans: plans, keys: keys, on: connection)
            }
            await client.shutdown()
            self.logger.info("registry loaded", metadata: [
                "tollgate.plans": "\(plans.count)", "tollgate.keys": "\(keys.count)", "tollgate.version": "\(version)",
            ])
        } catch {
            await client.shutdown()
            self.logger.error("could not load the registry into Redis", metadata: ["error": "\(error)"])
            throw error
        }
    }
}
