import Foundation
import Logging
import TollgateWire
import TollgateZeroMQ

/// The uplink thread's state and loop: spools closed batches, sends them, retries, handles acks.
///
/// Threading: created and used only on the uplink thread, which owns the DEALER socket and the spool.
final class UplinkLoop {
    struct InFlight {
        var envelope: [UInt8]
        var attempts = 0
        var nextAttempt: ContinuousClock.Instant
        /// When the first attempt went out; an ack's latency is measured from it.
        var firstSent: ContinuousClock.Instant?
        /// When the latest attempt went out.
        var lastSent: ContinuousClock.Instant?
    }

    struct Pending {
        var location: SpooledBatch
        /// Kept for batches spooled this run, so the first send skips a disk read.
        var envelope: [UInt8]?
    }

    let configuration: UplinkConfiguration
    let recorder: UplinkRecorder
    let status: UplinkStatusBox
    let metrics: UplinkMetrics
    var logger: Logger
    let codec: WireCodec
    let spool: Spool
    let socket: ZMQSocket
    let epoch: UInt64
    var nextSequence: UInt64 = 1
    /// Closed batches refused by a full spool; they get a sequence only once spooled.
    var unspooled: [[PendingAggregate]] = []
    var pending: [Pending] = []
    var pendingHead = 0
    var inFlight: [BatchID: InFlight] = [:]
    var sendBlocked = false
    /// Hello is owed at start and again while no collector answers.
    var helloDue = true
    var lastReply: ContinuousClock.Instant?
    var nextHeartbeat = ContinuousClock.now
    var stopDeadline: ContinuousClock.Instant?
    var counts = (sent: UInt64(0), acked: UInt64(0), retried: UInt64(0), rejected: UInt64(0))
    /// How long acks take lately; no retry goes out sooner than its timeout.
    var ackLatency = AckLatency()

    /// Replays the spool, picks this run's epoch and connects the DEALER.
    init(
        configuration: UplinkConfiguration, recorder: UplinkRecorder, context: ZMQContext,
        status: UplinkStatusBox, metrics: UplinkMetrics, logger: Logger
    ) throws {
        self.configuration = configuration
        self.recorder = recorder
        self.status = status
        self.metrics = metrics
        self.codec = WireCodec(maxFrameBytes: configuration.zeroMQ.maxFrameBytes)
        let spool = try Spool(
            directory: configuration.spoolDirectory, options: configuration.spool, metrics: metrics,
            maxFrameBytes: configuration.zeroMQ.maxFrameBytes, logger: logger
        )
        do {
            self.socket = try Self.makeSocket(context: context, configuration: configuration)
        } catch {
            spool.close()
            throw error
        }
        self.spool = spool
        self.epoch = Self.makeEpoch(above: spool.replayReport.highestEpoch)
        self.pending = spool.unackedBatches.map { Pending(location: $0, envelope: nil) }
        self.logger = logger
        self.logger[metadataKey: "tollgate.epoch"] = "\(epoch)"
    }

    /// A value unique per process start: Unix milliseconds × 2^20 plus 20 random bits (63 bits in
    /// all), and above every epoch in the spool, so a clock set back cannot reuse an old identity.
    static func makeEpoch(above highest: UInt64) -> UInt64 {
        let ms = UInt64(max(0, Date().timeIntervalSince1970 * 1_000))
        let candidate = ((ms << 20) | UInt64.random(in: 0 ..< 1 << 20)) & (UInt64.max >> 1)
        return max(candidate, highest &+ 1)
    }

    static func makeSocket(context: ZMQContext, configuration: UplinkConfiguration) throws -> ZMQSocket {
        let settings = configuration.zeroMQ
        let socket = try context.makeSocket(.dealer)
        do {
            // The spool holds every batch, so nothing queued in ZeroMQ is worth waiting for at close.
            try socket.setOption(.linger, to: 0)
            // Queue only to live collectors, so a retry goes to one that can answer.
            try socket.setOption(.immediate, to: true)
            try socket.setOption(.sendHighWaterMark, to: Int32(clamping: settings.highWaterMark))
            try socket.setOption(.receiveHighWaterMark, to: Int32(clamping: settings.highWaterMark))
            try socket.setOption(.reconnectInterval, to: Int32(clamping: settings.reconnectIntervalMs))
            try socket.setOption(.reconnectIntervalMax, to: Int32(clamping: settings.reconnectIntervalMaxMs))
            try socket.setOption(.maxMessageSize, to: Int64(settings.maxFrameBytes))
            try socket.secureAsCollectorClient(settings.curve)
            for endpoint in configuration.endpoints {
                try socket.connect(endpoint)
            }
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    /// Runs until a stop is requested and the drain ends; closes the socket and the spool.
    func run(thread: ZMQSocketThread) throws {
        defer {
            socket.close()
            spool.close()
            metrics.connected.record(0)
            status.update { $0.isRunning = false; $0.isConnected = false }
        }
        status.update {
            $0.bootEpoch = epoch
            $0.isRunning = true
            $0.replay = spool.replayReport
        }
        logger.info("uplink started", metadata: [
            "tollgate.unacked": "\(spool.unackedCount)", "tollgate.collectors": "\(configuration.endpoints)",
        ])
        do {
            while try step(thread: thread) {}
        } catch let error as ZMQError where error.isContextTerminated {
            // The context went away under us: keep what was accepted, then stop.
            recorder.stop()
            try spoolClosedBatches(now: .now, final: true)
        }
        publish(now: .now)
        if spool.unackedCount > 0 {
            logger.warning("uplink stopped with unacknowledged batches; the spool keeps them for the next start",
                           metadata: ["tollgate.unacked": "\(spool.unackedCount)"])
        }
    }

    /// One turn of the loop; false when it is time to stop.
    func step(thread: ZMQSocketThread) throws -> Bool {
        let now = ContinuousClock.now
        if stopDeadline == nil, thread.isStopRequested {
            recorder.stop()
            stopDeadline = now + configuration.drainTimeout
            logger.info("uplink stopping: flushing and draining acks", metadata: ["tollgate.unacked": "\(spool.unackedCount)"])
        }
        try spoolClosedBatches(now: now, final: stopDeadline != nil)
        try spool.syncIfDue()
        sendHelloIfDue()
        try fillWindow(now: now)
        try sendDue(now: now)
        if now >= nextHeartbeat { sendHeartbeat(now: now) }
        publish(now: now)
        if let deadline = stopDeadline, (unspooled.isEmpty && spool.unackedCount == 0) || now >= deadline {
            return false
        }
        if try socket.poll(.readable, timeoutMilliseconds: pollTimeout(now: now)).contains(.readable) {
            while let message = try socket.tryReceiveMessage() {
                try handle(message, now: .now)
            }
        }
        return true
    }

    private func pollTimeout(now: ContinuousClock.Instant) -> Int {
        var wake = min(now + configuration.pollInterval, nextHeartbeat)
        if !sendBlocked, let due = inFlight.values.lazy.map(\.nextAttempt).min() { wake = min(wake, due) }
        return max(1, (wake - now).milliseconds)
    }

    // MARK: Batches

    /// Takes closed batches from the recorder, numbers them and appends them to the spool.
    func spoolClosedBatches(now: ContinuousClock.Instant, final: Bool) throws {
        unspooled += recorder.takeBatches(now: now, force: final, backlogged: isBacklogged)
        while let items = unspooled.first {
            let id = BatchID(epoch: epoch, sequence: nextSequence)
            let batch = UsageBatchFrame(
                sidecarID: configuration.sidecarID, bootEpoch: id.epoch, sequence: id.sequence,
                createdAtUnixMs: Int64(Date().timeIntervalSince1970 * 1_000), aggregates: items.map(\.frame)
            )
            let envelope: [UInt8]
            do {
                envelope = try codec.encode(batch, correlationID: id.sequence, sentAtUnixMs: batch.createdAtUnixMs)
            } catch {
                try refuseUnencodable(items, error: error)
                continue
            }
            guard let location = try appendUnlessFull(envelope, id: id, final: final) else { break }
            nextSequence += 1
            unspooled.removeFirst()
            pending.append(Pending(location: location, envelope: envelope))
        }
        updateFull()
    }

    /// Whether collectors are behind: at least `backlogBatches` batches wait for an ack or a send.
    /// The recorder then keeps its open batch longer, so fewer, fuller batches go out.
    var isBacklogged: Bool {
        inFlight.count + (pending.count - pendingHead) + unspooled.count >= configuration.backlogBatches
    }

    /// Appends to the spool; nil when the spool is full (the batch waits in `unspooled`).
    private func appendUnlessFull(_ envelope: [UInt8], id: BatchID, final: Bool) throws -> SpooledBatch? {
        do {
            return try spool.append(envelope, id: id, ignoringBound: final)
        } catch {
            guard error.code == .spoolFull else { throw error }
            return nil
        }
    }

    /// A batch over the frame limit is split in two; a single aggregate over it is dead-lettered.
    private func refuseUnencodable(_ items: [PendingAggregate], error: WireError) throws {
        if items.count > 1 {
            let half = items.count / 2
            unspooled.replaceSubrange(0 ..< 1, with: [Array(items[..<half]), Array(items[half...])])
            return
        }
        unspooled.removeFirst()
        let calls = items.first?.delta.calls ?? 0
        metrics.callsRejected.increment(by: Int64(clamping: calls))
        logger.error("usage aggregate does not fit in a frame; dead-lettered", metadata: [
            "tollgate.key": "\(items.first?.delta.key.prefix(64) ?? "")", "tollgate.calls": "\(calls)", "tollgate.error": "\(error)",
        ])
        try spool.deadLetter([], reason: "unencodable aggregate (\(calls) calls): \(error)")
    }

    private func updateFull() {
        let wasFull = recorder.isFull
        // Stay full until there is real room again, so the proxy does not flap.
        let full = !unspooled.isEmpty || (wasFull && spool.byteCount > spool.options.maxBytes / 10 * 9)
        guard full != wasFull else { return }
        recorder.setFull(full)
        metrics.spoolFull.record(full ? 1 : 0)
        if full {
            logger.error("spool is full: refusing new usage until collectors acknowledge", metadata: [
                "tollgate.spool_bytes": "\(spool.byteCount)", "tollgate.unacked": "\(spool.unackedCount)",
            ])
        } else {
            logger.notice("spool has room again: accepting usage")
        }
    }

    /// Moves spooled batches into the in-flight window.
    func fillWindow(now: ContinuousClock.Instant) throws {
        while inFlight.count < configuration.maxInFlight, pendingHead < pending.count {
            let next = pending[pendingHead]
            pending[pendingHead].envelope = nil
            pendingHead += 1
            // An ack may have settled it already (a reply to an earlier run's send).
            guard spool.isUnacked(next.location.id) else { continue }
            let envelope = try next.envelope ?? spool.read(next.location)
            inFlight[next.location.id] = InFlight(envelope: envelope, nextAttempt: now)
        }
        if pendingHead > 1_024, pendingHead * 2 > pending.count {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
    }

    /// Sends every in-flight batch whose time has come, oldest first, until ZeroMQ would block.
    func sendDue(now: ContinuousClock.Instant) throws {
        sendBlocked = false
        for id in inFlight.filter({ $0.value.nextAttempt <= now }).keys.sorted() {
            // The ack latency may have grown since this retry was scheduled: wait it out first.
            if let sent = inFlight[id]!.lastSent, now < sent + ackLatency.retransmitTimeout {
                inFlight[id]!.nextAttempt = sent + ackLatency.retransmitTimeout
                continue
            }
            guard try socket.trySend([inFlight[id]!.envelope]) else {
                // No live collector (or its queue is full): try again on a later turn.
                sendBlocked = true
                return
            }
            inFlight[id]!.attempts += 1
            inFlight[id]!.lastSent = now
            let attempts = inFlight[id]!.attempts
            if attempts == 1 {
                inFlight[id]!.firstSent = now
                counts.sent += 1
                metrics.batchesSent.increment()
            } else {
                counts.retried += 1
                metrics.batchesRetried.increment()
                logger.debug("retrying batch", metadata: ["tollgate.batch": "\(id)", "tollgate.attempt": "\(attempts)"])
            }
            inFlight[id]!.nextAttempt = now + retryDelay(afterAttempt: attempts)
        }
    }

    /// retryInitial × 2^(attempt-1), capped at retryMax, scaled by a random 0.5...1 so retries spread;
    /// never less than the ack latency's retransmit timeout, so a busy collector is not sent duplicates.
    func retryDelay(afterAttempt attempt: Int) -> Duration {
        var delay = configuration.retryInitial
        for _ in 1 ..< min(attempt, 32) where delay < configuration.retryMax {
            delay *= 2
        }
        return max(min(delay, configuration.retryMax) * Double.random(in: 0.5 ... 1), ackLatency.retransmitTimeout)
    }
}
