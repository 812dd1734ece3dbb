import Foundation
import Logging
import ServiceLifecycle
import TollgateConfig
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateWire

/// The collector as a `Service`: loads the registry, then runs the update publisher and the ingest
/// thread until graceful shutdown.
///
/// Threading: `Sendable`. `run()` does no blocking work on the cooperative pool: the registry is
/// loaded through a `RedisClient` (its own thread), ingest runs on `CollectorIngest`'s thread and
/// updates go out from `UpdatePublisher`'s. The publisher starts before ingest and stops after it
/// (sending what was queued), so the ingest loop and the admin API can publish the whole time.
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
    /// What the ingest thread applied, sampled over time: the dashboard's ingest rate.
    public let ingestRate: IngestRate
    /// The PUB side of quota updates, used by the ingest loop and handed to the admin API. Bound while `run()` runs.
    public let publisher: UpdatePublisher
    /// The sinks applied batches and settlements are fed to; nil when none is configured.
    public let sinks: CollectorSinks?
    /// Set once the registry is loaded and ingest listens: `/healthz` answers 503 `starting` before.
    public let readiness = Readiness()
    private let plans: [String: Plan]
    private let keys: [KeyRecord]
    private let logger: Logger

    /// A collector for `configuration`; nothing starts before `run()`.
    public init(
        configuration: TollgateConfiguration, logger: Logger,
        clock: any TollgateClock = WallClock(), updates: (any QuotaUpdateSink)? = nil
    ) {
        let publisher = UpdatePublisher(
            bind: configuration.collector.publishBind,
            codec: WireCodec(maxFrameBytes: configuration.zeromq.maxFrameBytes),
            highWaterMark: configuration.zeromq.highWaterMark,
            curve: configuration.zeromq.curve,
            logger: logger
        )
        var ingest = CollectorIngestConfiguration(configuration)
        ingest.clock = clock
        let ingestRate = IngestRate()
        ingest.ingestRate = ingestRate
        // The ingest loop raises its updates (exhausted) through the same PUB socket unless told otherwise.
        ingest.updates = updates ?? publisher
        let sinks = CollectorSinks(settings: configuration.collector.sinks, collectorID: configuration.collector.id,
                                   redis: ingest.redis, clock: clock, logger: logger)
        ingest.sinks = sinks?.fanOut
        if let x402 = configuration.x402 {
            ingest.payments = PaymentCoordinator(
                settings: x402, facilitator: FacilitatorClient(settings: x402),
                redis: RedisClient(configuration: ingest.redis), updates: ingest.updates, clock: clock, logger: logger,
                sinks: sinks?.fanOut, collectorID: configuration.collector.id
            )
        }
        self.sinks = sinks
        self.ingestConfiguration = ingest
        self.ingestRate = ingestRate
        self.publisher = publisher
        self.fleet = FleetTable(staleAfter: self.ingestConfiguration.sidecarStaleAfter)
        self.plans = configuration.plans
        self.keys = configuration.keys
        self.logger = logger
    }

    /// Loads plans and keys into Redis, serves until graceful shutdown or cancellation, then stops
    /// and joins the ingest thread, then the publisher.
    public func run() async throws {
        try await self.loadRegistry()
        if let payments = self.ingestConfiguration.payments {
            // Reported in /healthz and metrics; a facilitator that is down does not stop metering.
            Task { await payments.checkFacilitator() }
        }
        // The sinks start first and stop last: the ingest loop feeds them for as long as it runs.
        try self.sinks?.start()
        do {
            try await self.publisher.start()
        } catch {
            await self.sinks?.stop()
            throw error
        }
        do {
            try await self.serve()
        } catch {
            await self.publisher.stop()
            await self.sinks?.stop()
            throw error
        }
        await self.publisher.stop()
        await self.sinks?.stop()
    }

    private func serve() async throws {
        let ingest = try await CollectorIngest.start(configuration: self.ingestConfiguration, fleet: self.fleet, logger: self.logger)
        self.readiness.set(true)
        defer { self.readiness.set(false) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Returns on graceful shutdown, or throws when the task is cancelled: stop either way.
                try? await gracefulShutdown()
            }
            group.addTask {
                // Ends early only if the loop failed; then its error ends the service.
                try await ingest.join()
            }
            if let stripe = self.sinks?.stripe {
                group.addTask {
                    // Runs until shutdown; what it has not sent stays pending in Redis. It never
                    // ends the group itself: it waits for the cancellation that ends the others.
                    try? await stripe.run()
                    try? await Task.sleep(for: .seconds(86_400 * 365))
                }
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

/// Whether a collector is ready to serve: a flag any thread may read and set.
// @unchecked Sendable: `ready` is only touched under `lock`.
public final class Readiness: @unchecked Sendable {
    private let lock = NSLock()
    private var ready = false

    /// Not ready.
    public init() {}

    /// Whether the collector has loaded its registry and its ingest listens.
    public var isReady: Bool { lock.withLock { ready } }

    /// Marks the collector ready or not (the service does, around its ingest loop).
    public func set(_ value: Bool) { lock.withLock { ready = value } }
}
