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
    /// Where a batch's acknowledgement goes.
    struct BatchReply {
        var routingID: [UInt8]
        var correlationID: UInt64
        /// A second delivery that joined the first while it was in the pipeline: acknowledged
        /// DUPLICATE when the first is committed, since it was not applied itself.
        var joined: Bool
        /// The calls the batch carries, for the ingest rate once it is applied.
        var calls: UInt64 = 0
        /// The batch itself, kept only when sinks are configured (they get it after the commit).
        var record: UsageBatchRecord?
    }

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
    /// The CURVE allow list's ZAP handler, when one is configured.
    private let authenticator: ZMQAuthenticator?
    private let router: ZMQSocket
    /// Made on first use; after an I/O error it reconnects by itself on the next call. Serves
    /// requests (leases, lookups, hello) and nothing else, so they never wait behind batch replies.
    private var connection: RedisConnection?
    /// Usage batches, pipelined on a connection of their own; made on first use.
    private(set) var pipeline: UsagePipeline?
    /// Where to acknowledge each batch in the pipeline, by token (a retry that joined its batch adds one).
    var batchReplies: [Int: [BatchReply]] = [:]
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
        var authenticator: ZMQAuthenticator?
        do {
            let curve = try CurveServer(configuration.curve)
            // The allow list answers before the socket binds, so no handshake goes unchecked.
            authenticator = try curve?.startAuthenticator(context: context, socket: "ingest", logger: logger)
            self.router = try Self.makeRouter(context: context, configuration: configuration, curve: curve)
        } catch {
            authenticator?.stop()
            context.close()
            throw error
        }
        self.authenticator = authenticator
        self.context = context
        self.logger.info("collector ingest listening", metadata: ["tollgate.endpoint": "\(configuration.routerBind)"])
    }

    /// Serves until `thread` is asked to stop; ZeroMQ failures other than EINTR end the loop.
    ///
    /// One poll waits for the ROUTER and, while batch replies are owed, the batch connection's
    /// socket. Requests are answered as they are read; batches are queued in the pipeline, which
    /// writes them in groups and keeps up to `maxGroupsInFlight` in Redis while the next ones are
    /// decoded. Each batch is acknowledged once its replies are in.
    func run(until thread: ZMQSocketThread) throws {
        let timeout = Int(self.configuration.pollInterval.components.seconds * 1_000)
            + Int(self.configuration.pollInterval.components.attoseconds / 1_000_000_000_000_000)
        while !thread.isStopRequested {
            // Answers prepared elsewhere (payments) wake the poll through their pipe; without one
            // (the kernel refused it) they are looked for every 2 ms while any is pending.
            let wakes = self.asyncReplies.wakeDescriptor >= 0
            let wait = !wakes && self.asyncReplies.pending > 0 ? 2 : max(1, timeout)
            for (routingID, correlationID, answer) in self.asyncReplies.take() {
                switch answer {
                case .reply(let body):
                    self.reply(to: routingID, correlationID: correlationID, body)
                case .finish(let finish):
                    self.finishPayment(finish, to: routingID, correlationID: correlationID)
                }
            }
            let pipeline = self.pipeline
            var poller = ZMQPoller()
            // A full queue stops reading batches until Redis catches up; requests then wait at most
            // one group's round trip.
            let routerIndex = self.hasRoomForBatches ? poller.register(self.router, for: .readable) : nil
            let redisIndex = pipeline.flatMap { $0.isAwaitingReplies ? $0.fileDescriptor : nil }.map {
                poller.register(fileDescriptor: $0, for: .readable)
            }
            if wakes { poller.register(fileDescriptor: self.asyncReplies.wakeDescriptor, for: .readable) }
            let ready = try self.poll(poller, timeoutMilliseconds: pipeline?.canSend == true ? 0 : wait)
            if let redisIndex, let pipeline, !ready[redisIndex].isEmpty {
                pipeline.receive(readable: true)
                self.acknowledgeCompleted()
            }
            if let routerIndex, ready[routerIndex].contains(.readable) {
                // A bounded number, so the stop flag, replies and gauge are still seen under load.
                for _ in 0..<1_000 {
                    guard self.hasRoomForBatches, let message = try self.router.tryReceiveMessage()
                    else { break }
                    self.handle(message)
                    self.sendBatches()
                }
            }
            self.sendBatches()
            self.pipeline?.checkTimeout()
            self.acknowledgeCompleted()
            self.updateGauge()
            self.configuration.ingestRate?.tick()
        }
        // Batches in Redis are finished and acknowledged (within the command timeout); those still
        // queued are not, and their senders retry them.
        if let pipeline = self.pipeline {
            while pipeline.isAwaitingReplies { pipeline.receiveBlocking() }
            self.acknowledgeCompleted()
        }
    }

    /// Whether the pipeline's queue has room: up to two groups' worth of batches and aggregates
    /// wait decoded; beyond that the ROUTER is left unread (ZeroMQ queues, then pushes back).
    var hasRoomForBatches: Bool {
        guard let pipeline = self.pipeline else { return true }
        let options = self.configuration.pipeline
        return pipeline.queuedBatches < 2 * options.maxBatchesPerGroup && pipeline.queuedAggregates < 2 * options.maxAggregatesPerGroup
    }

    /// The ready events per registered item; a signal (EINTR) counts as nothing ready.
    private func poll(_ poller: ZMQPoller, timeoutMilliseconds: Int) throws(ZMQError) -> [ZMQPollEvents] {
        do {
            return try poller.poll(timeoutMilliseconds: timeoutMilliseconds)
        } catch where error.code == .eintr {
            return Array(repeating: [], count: poller.count)
        }
    }

    /// Writes groups of queued batches while the pipeline has room.
    func sendBatches() {
        guard let pipeline = self.pipeline else { return }
        while pipeline.canSend {
            pipeline.send()
        }
    }

    /// A bound ROUTER socket with the configured limits; closed again if any step fails.
    private static func makeRouter(context: ZMQContext, configuration: CollectorIngestConfiguration, curve: CurveServer?) throws -> ZMQSocket {
        let router = try context.makeSocket(.router)
        do {
            try router.setOption(.linger, to: 500)
            // Replies to a vanished peer fail loudly (EHOSTUNREACH) instead of vanishing.
            try router.setOption(.routerMandatory, to: true)
            try router.setOption(.maxMessageSize, to: Int64(configuration.maxFrameBytes) + 64)
            let hwm = Int32(clamping: configuration.highWaterMark)
            try router.setOption(.sendHighWaterMark, to: hwm)
            try router.setOption(.receiveHighWaterMark, to: hwm)
            try curve?.secure(router)
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
        self.authenticator?.stop()
        self.context.close()
        self.connection?.close()
        self.connection = nil
        self.pipeline?.connection.close()
        self.pipeline = nil
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

    /// The batch pipeline and its connection, connecting on first use.
    func batchPipeline() throws(StoreError) -> UsagePipeline {
        if let pipeline { return pipeline }
        do {
            let connection = try RedisConnection(configuration: self.configuration.redis)
            let pipeline = UsagePipeline(store: self.store, connection: connection, options: self.configuration.pipeline)
            self.pipeline = pipeline
            return pipeline
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
