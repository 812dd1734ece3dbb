import Logging
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateWire
import TollgateZeroMQ

/// The state of the ingest thread: socket, Redis connection, codec and counters.
///
/// Threading: lives and dies on the ingest thread (it holds a socket and a connection, neither
/// thread-safe); `CollectorIngest` is its only owner.
final class IngestLoop {
    let configuration: CollectorIngestConfiguration
    let fleet: FleetTable
    var logger: Logger
    let codec: WireCodec
    let store: UsageStore
    let registry = KeyRegistry()
    let clock: any TollgateClock
    let leases: LeaseStore
    var metrics = CollectorMetrics()
    private let context: ZMQContext
    private let router: ZMQSocket
    /// Made on first use; after an I/O error it reconnects by itself on the next call.
    private var connection: RedisConnection?
    private var lastGaugeUpdate = ContinuousClock.now - .seconds(1)
    /// Answers produced off the thread (payments), sent by the loop.
    let asyncReplies = AsyncReplies()

    /// Makes the context and ROUTER socket and binds it; throws (leaving nothing open) on failure.
    init(configuration: CollectorIngestConfiguration, fleet: FleetTable, logger: Logger) throws {
        self.configuration = configuration
        self.fleet = fleet
        self.logger = logger
        self.logger[metadataKey: "tollgate.collector"] = "\(configuration.collectorID)"
        self.codec = WireCodec(maxFrameBytes: configuration.maxFrameBytes)
        self.clock = configuration.clock
        self.store = UsageStore(configuration: configuration.store, clock: configuration.clock)
        self.leases = LeaseStore(configuration: configuration.leases)
        let context = try ZMQContext()
        do {
            self.router = try Self.makeRouter(context: context, configuration: configuration)
        } catch {
            context.close()
            throw error
        }
        self.context = context
        self.logger.info("collector ingest listening", metadata: ["tollgate.endpoint": "\(configuration.routerBind)"])
    }

    /// Serves until `thread` is asked to stop; ZeroMQ failures other than EINTR end the loop.
    func run(until thread: ZMQSocketThread) throws {
        let timeout = Int(self.configuration.pollInterval.components.seconds * 1_000)
            + Int(self.configuration.pollInterval.components.attoseconds / 1_000_000_000_000_000)
        while !thread.isStopRequested {
            // While answers are being prepared elsewhere, look for them every 2 ms.
            let wait = self.asyncReplies.pending > 0 ? 2 : max(1, timeout)
            for (routingID, correlationID, body) in self.asyncReplies.take() {
                self.reply(to: routingID, correlationID: correlationID, body)
            }
            if try self.waitForMessages(timeoutMilliseconds: wait) {
                // Drain a bounded number so the stop flag and gauge are still checked under load.
                for _ in 0..<1_000 {
                    guard let message = try self.router.tryReceiveMessage() else { break }
                    self.handle(message)
                }
            }
            self.updateGauge()
            self.configuration.ingestRate?.tick()
        }
    }

    /// Whether a message is waiting after at most `timeoutMilliseconds`; a signal (EINTR) counts as none.
    private func waitForMessages(timeoutMilliseconds: Int) throws(ZMQError) -> Bool {
        do {
            return try self.router.poll(.readable, timeoutMilliseconds: timeoutMilliseconds).contains(.readable)
        } catch where error.code == .eintr {
            return false
        }
    }

    /// A bound ROUTER socket with the configured limits; closed again if any step fails.
    private static func makeRouter(context: ZMQContext, configuration: CollectorIngestConfiguration) throws -> ZMQSocket {
        let router = try context.makeSocket(.router)
        do {
            try router.setOption(.linger, to: 500)
            // Replies to a vanished peer fail loudly (EHOSTUNREACH) instead of vanishing.
            try router.setOption(.routerMandatory, to: true)
            try router.setOption(.maxMessageSize, to: Int64(configuration.maxFrameBytes) + 64)
            let hwm = Int32(clamping: configuration.highWaterMark)
            try router.setOption(.sendHighWaterMark, to: hwm)
            try router.setOption(.receiveHighWaterMark, to: hwm)
            if let secret = configuration.curveSecretKey {
                try router.setOption(.curveServer, to: true)
                try router.setOption(.curveSecretKey, to: try ZMQCurveKey(z85: secret))
            }
            try router.bind(configuration.routerBind)
            return router
        } catch {
            router.close()
            throw error
        }
    }

    /// Closes the socket, the context and the Redis connection. Runs on the ingest thread.
    func close() {
        self.router.close()
        self.context.close()
        self.connection?.close()
        self.connection = nil
        self.logger.info("collector ingest stopped")
    }

    /// The thread's Redis connection, connecting it on first use.
    func redis() throws(StoreError) -> RedisConnection {
        if let connection { return connection }
        do {
            let connection = try RedisConnection(configuration: self.configuration.redis)
            self.connection = connection
            return connection
        } catch let error as RedisError {
            throw StoreError(.unavailable, "connecting to Redis: \(error)", redisError: error)
        } catch {
            throw StoreError(.unavailable, "connecting to Redis: \(error)")
        }
    }

    /// Sends `body` to `routingID`, echoing `correlationID`; a reply that cannot go out is counted, not retried.
    func reply(to routingID: [UInt8], correlationID: UInt64, _ body: Tollgate_V1_Envelope.OneOf_Body) {
        do {
            let bytes = try self.codec.encode(body, correlationID: correlationID, sentAtUnixMs: self.clock.now().milliseconds)
            // Never block the loop on one slow peer: a full queue drops the reply, and the sidecar retries.
            if try !self.router.trySend([routingID, bytes]) {
                self.metrics.repliesDropped.increment()
            }
        } catch {
            self.metrics.repliesDropped.increment()
            self.logger.debug("reply dropped", metadata: ["tollgate.kind": "\(body.kindName)", "error": "\(error)"])
        }
    }

    /// Sets the connected-sidecars gauge: at most once a second, or at once when `force`d (a sidecar spoke).
    func updateGauge(force: Bool = false) {
        let now = ContinuousClock.now
        guard force || now - self.lastGaugeUpdate >= .seconds(1) else { return }
        self.lastGaugeUpdate = now
        self.metrics.connectedSidecars.record(self.fleet.connected(at: self.clock.now()).count)
    }
}
