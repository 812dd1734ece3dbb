import Foundation
import Logging
import TollgateWire
import TollgateZeroMQ

extension UplinkLoop {
    var nowUnixMs: Int64 { Int64(Date().timeIntervalSince1970 * 1_000) }

    func isConnected(now: ContinuousClock.Instant) -> Bool {
        guard let lastReply else { return false }
        return now - lastReply <= configuration.heartbeatInterval * configuration.connectedHeartbeats
    }

    /// Sends a control message if ZeroMQ takes it now; false when no collector could take it.
    @discardableResult
    private func sendControl(_ body: Tollgate_V1_Envelope.OneOf_Body) -> Bool {
        do {
            return try socket.trySend([codec.encode(body, sentAtUnixMs: nowUnixMs)])
        } catch {
            logger.warning("could not send \(body.kindName)", metadata: ["tollgate.error": "\(error)"])
            return false
        }
    }

    /// Sends Hello when one is owed; it stays owed until a collector connection takes it.
    func sendHelloIfDue() {
        guard helloDue else { return }
        var hello = Tollgate_V1_Hello()
        hello.sidecarID = configuration.sidecarID
        hello.bootEpoch = epoch
        hello.softwareVersion = configuration.softwareVersion
        hello.capabilities = ["usage_batch", "leases", "quota_updates"]
        hello.lastUpdateVersion = configuration.updateVersion.value
        if sendControl(.hello(hello)) { helloDue = false }
    }

    func sendHeartbeat(now: ContinuousClock.Instant) {
        var heartbeat = Tollgate_V1_Heartbeat()
        heartbeat.sidecarID = configuration.sidecarID
        heartbeat.bootEpoch = epoch
        heartbeat.spoolRecords = UInt64(spool.recordCount)
        heartbeat.spoolBytes = UInt64(spool.byteCount)
        heartbeat.unackedBatches = UInt64(spool.unackedCount)
        heartbeat.lastUpdateVersion = configuration.updateVersion.value
        // Until a collector answers, say Hello again: it may have missed the first one.
        if !isConnected(now: now) { helloDue = true }
        sendHelloIfDue()
        sendControl(.heartbeat(heartbeat))
        nextHeartbeat = now + configuration.heartbeatInterval
    }

    /// Handles one message from a collector.
    func handle(_ message: [[UInt8]], now: ContinuousClock.Instant) throws {
        guard let frame = message.last, let envelope = try? codec.decode(frame) else {
            metrics.framesDropped.increment()
            logger.warning("dropped a frame from a collector that does not decode", metadata: ["tollgate.frames": "\(message.count)"])
            return
        }
        switch envelope.body {
        case .batchAck(let ack):
            try handleAck(ack, now: now)
        case .helloAck(let ack):
            lastReply = now
            logger.debug("collector said hello", metadata: ["tollgate.collector": "\(ack.collectorID)"])
            if ack.resyncRequired, ack.currentUpdateVersion > configuration.updateVersion.value {
                // Updates were published while this sidecar was not listening (start, or a
                // reconnect): what it cached from them may be stale.
                logger.info("resynchronising quota state", metadata: [
                    "tollgate.had": "\(configuration.updateVersion.value)", "tollgate.current": "\(ack.currentUpdateVersion)",
                ])
                configuration.updateVersion.raise(to: ack.currentUpdateVersion)
                configuration.onResync?()
            }
        case .error(let reply):
            lastReply = now
            // Not tied to one batch for sure: the retry timer re-sends whatever it was about.
            logger.warning("collector replied with an error", metadata: [
                "tollgate.code": "\(reply.code)", "tollgate.error": "\(reply.message)", "tollgate.correlation": "\(envelope.correlationID)",
            ])
        default:
            metrics.framesDropped.increment()
        }
    }

    private func handleAck(_ ack: Tollgate_V1_BatchAck, now: ContinuousClock.Instant) throws {
        guard ack.sidecarID == configuration.sidecarID else {
            metrics.framesDropped.increment()
            logger.warning("ack for another sidecar dropped", metadata: ["tollgate.other": "\(ack.sidecarID)"])
            return
        }
        lastReply = now
        let id = BatchID(epoch: ack.bootEpoch, sequence: ack.sequence)
        let outcome: BatchOutcome
        switch ack.status {
        case .applied: outcome = .applied
        case .duplicate: outcome = .duplicate
        case .rejected: outcome = .rejected
        default:
            metrics.framesDropped.increment()
            logger.warning("ack with no status dropped; the batch will be retried", metadata: ["tollgate.batch": "\(id)"])
            return
        }
        // A second ack for a settled batch (a retry answered twice) changes nothing.
        guard spool.isUnacked(id) else {
            inFlight[id] = nil
            return
        }
        if let sent = inFlight[id]?.firstSent { ackLatency.add(now - sent) }
        if outcome == .rejected {
            try deadLetter(id, error: ack.error)
        } else {
            counts.acked += 1
            (outcome == .applied ? metrics.batchesApplied : metrics.batchesDuplicate).increment()
        }
        try spool.resolve(id, outcome: outcome)
        inFlight[id] = nil
    }

    /// Keeps a rejected batch in the dead-letter file, counted and logged: never retried, never lost.
    private func deadLetter(_ id: BatchID, error: String) throws {
        let envelope = try inFlight[id]?.envelope ?? spool.read(spool.unackedBatches.first { $0.id == id }!)
        var calls: UInt64 = 0
        if case .usageBatch(let batch)? = try? codec.decode(envelope).body { calls = batch.totalCalls }
        try spool.deadLetter(envelope, reason: "rejected by collector: \(error)")
        counts.rejected += 1
        metrics.batchesRejected.increment()
        metrics.callsRejected.increment(by: Int64(clamping: calls))
        logger.error("collector rejected a batch; kept in the dead-letter file", metadata: [
            "tollgate.batch": "\(id)", "tollgate.calls": "\(calls)", "tollgate.error": "\(error)",
            "tollgate.dead_letter": "\(spool.deadLetterPath)",
        ])
    }

    /// Refreshes the gauges and the status snapshot.
    func publish(now: ContinuousClock.Instant) {
        let connected = isConnected(now: now)
        metrics.connected.record(connected ? 1 : 0)
        metrics.unackedBatches.record(spool.unackedCount)
        status.update {
            $0.nextSequence = nextSequence
            $0.isConnected = connected
            $0.isFull = recorder.isFull
            $0.spoolBytes = spool.byteCount
            $0.spoolRecords = spool.recordCount
            $0.unackedBatches = spool.unackedCount
            $0.inFlightBatches = inFlight.count
            $0.unspooledBatches = unspooled.count
            $0.batchesSent = counts.sent
            $0.batchesAcked = counts.acked
            $0.batchesRetried = counts.retried
            $0.batchesRejected = counts.rejected
        }
    }
}
