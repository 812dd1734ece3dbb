import Logging
import TollgateConfig
import TollgateCore
import TollgateRedis

/// The sinks a collector's configuration asks for, and the fan-out that feeds them.
///
/// Threading: `Sendable`. `CollectorService` starts it before the ingest thread and stops it after
/// (so every batch the loop applied reaches the sinks), and runs `stripe` as a task beside ingest.
public struct CollectorSinks: Sendable {
    /// The queue and thread every sink is fed from.
    public let fanOut: SinkFanOut
    /// The audit log, when configured.
    public let audit: AuditLogSink?
    /// The Stripe sink, when configured; its flusher must run as a service.
    public let stripe: StripeMeterSink?
    private let stripeRedis: RedisClient?

    /// The sinks `settings` describe; nil when none is configured.
    public init?(settings: SinkSettings, collectorID: String, redis: RedisConfiguration, clock: any TollgateClock, logger: Logger) {
        guard !settings.isEmpty else { return nil }
        var sinks: [any UsageSink] = []
        self.audit = settings.audit.map { AuditLogSink(settings: $0, logger: logger) }
        if let audit = self.audit { sinks.append(audit) }
        if let stripe = settings.stripe {
            let client = RedisClient(configuration: redis)
            self.stripeRedis = client
            self.stripe = StripeMeterSink(settings: stripe, owner: collectorID, redis: client, clock: clock, logger: logger)
            sinks.append(self.stripe!)
        } else {
            self.stripeRedis = nil
            self.stripe = nil
        }
        self.fanOut = SinkFanOut(sinks: sinks, capacity: settings.queueCapacity, logger: logger)
    }

    /// Opens the audit log (a path that cannot be written is an error here) and starts the sink thread.
    public func start() throws {
        try self.audit?.open()
        self.fanOut.start()
    }

    /// Delivers what is queued, closes the sinks, and lets the Stripe sink's Redis connection go.
    public func stop() async {
        await self.fanOut.stop()
        await self.stripeRedis?.shutdown()
    }
}
