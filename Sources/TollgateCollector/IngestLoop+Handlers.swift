import Foundation
import Logging
import TollgateStore
import TollgateWire

extension IngestLoop {
    /// Handles one ROUTER message, `[routingID, envelope]`; anything else is counted and dropped.
    func handle(_ frames: [[UInt8]]) {
        guard frames.count == 2, !frames[0].isEmpty else {
            self.metrics.decodeErrors[.badFraming]?.increment()
            self.logger.debug("dropped a message of \(frames.count) frames")
            return
        }
        let routingID = frames[0]
        let envelope: Tollgate_V1_Envelope
        do {
            envelope = try self.codec.decode(frames[1])
        } catch {
            self.metrics.decodeErrors[error.code]?.increment()
            self.logger.debug("dropped an undecodable frame", metadata: ["error": "\(error)"])
            return
        }
        guard let body = envelope.body else { return }  // the codec refuses bodiless envelopes
        self.metrics.received(body.kindName)
        let correlationID = envelope.correlationID
        switch body {
        case .hello(let hello):
            self.handleHello(hello, from: routingID, correlationID: correlationID)
        case .heartbeat(let heartbeat):
            self.handleHeartbeat(heartbeat)
        case .usageBatch(let batch):
            self.handleBatch(batch, from: routingID, correlationID: correlationID)
        case .keyLookup(let lookup):
            self.handleKeyLookup(lookup, from: routingID, correlationID: correlationID)
        case .leaseRequest(let request):
            self.handleLeaseRequest(request, from: routingID, correlationID: correlationID)
        case .leaseReturn(let giveBack):
            self.handleLeaseReturn(giveBack)
        case .paymentRequest(let request):
            self.handlePaymentRequest(request, from: routingID, correlationID: correlationID)
        default:
            self.metrics.unhandled(body.kindName)
        }
    }

    /// Payments wait on the facilitator (seconds, at worst): they run as tasks, and their answers
    /// come back through `asyncReplies`, which the loop drains.
    private func handlePaymentRequest(_ request: Tollgate_V1_PaymentRequest, from routingID: [UInt8], correlationID: UInt64) {
        guard let payments = self.configuration.payments else {
            var reply = Tollgate_V1_ErrorReply()
            reply.code = .unsupported
            reply.message = "this collector has no x402 settings"
            self.reply(to: routingID, correlationID: correlationID, .error(reply))
            return
        }
        let replies = self.asyncReplies
        replies.begin()
        Task {
            let result = await payments.handle(request)
            replies.push(routingID: routingID, correlationID: correlationID, .paymentResult(result))
        }
    }

    private func handleHello(_ hello: Tollgate_V1_Hello, from routingID: [UInt8], correlationID: UInt64) {
        self.fleet.record(SidecarStatus(
            sidecarID: hello.sidecarID, bootEpoch: hello.bootEpoch, lastSeen: self.clock.now(), spoolRecords: 0, spoolBytes: 0,
            unackedBatches: 0, lastUpdateVersion: hello.lastUpdateVersion,
            softwareVersion: hello.softwareVersion.isEmpty ? nil : hello.softwareVersion
        ))
        self.updateGauge(force: true)
        do {
            let version = try self.registry.version(on: self.redis())
            var ack = Tollgate_V1_HelloAck()
            ack.collectorID = self.configuration.collectorID
            ack.currentUpdateVersion = version
            ack.resyncRequired = hello.lastUpdateVersion != version
            self.reply(to: routingID, correlationID: correlationID, .helloAck(ack))
        } catch {
            self.replyError(to: routingID, correlationID: correlationID, error)
        }
    }

    private func handleHeartbeat(_ heartbeat: Tollgate_V1_Heartbeat) {
        let previous = self.fleet.status(of: heartbeat.sidecarID)
        self.fleet.record(SidecarStatus(
            sidecarID: heartbeat.sidecarID, bootEpoch: heartbeat.bootEpoch, lastSeen: self.clock.now(),
            spoolRecords: heartbeat.spoolRecords, spoolBytes: heartbeat.spoolBytes, unackedBatches: heartbeat.unackedBatches,
            lastUpdateVersion: heartbeat.lastUpdateVersion,
            softwareVersion: previous?.bootEpoch == heartbeat.bootEpoch ? previous?.softwareVersion : nil
        ))
        self.updateGauge(force: true)
    }

    private func handleBatch(_ batch: Tollgate_V1_UsageBatch, from routingID: [UInt8], correlationID: UInt64) {
        var ack = Tollgate_V1_BatchAck()
        ack.sidecarID = batch.sidecarID
        ack.bootEpoch = batch.bootEpoch
        ack.sequence = batch.sequence
        let metadata: Logger.Metadata = ["tollgate.sidecar": "\(batch.sidecarID)", "tollgate.batch": "\(batch.bootEpoch)/\(batch.sequence)"]
        let record = UsageBatchRecord(wire: batch)
        do {
            let result = try self.store.apply(record, on: self.redis())
            switch result.outcome {
            case .applied:
                ack.status = .applied
                self.metrics.batchesApplied.increment()
            case .duplicate:
                ack.status = .duplicate
                self.metrics.batchesDuplicate.increment()
            }
            if let sinks = self.configuration.sinks {
                self.feed(sinks, record, result, ack: ack, to: routingID, correlationID: correlationID)
                return
            }
        } catch where error.code == .invalidInput {
            ack.status = .rejected
            ack.error = error.message
            self.metrics.batchesRejected.increment()
            self.logger.warning("rejected a usage batch", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        } catch {
            // Not acknowledged: the sidecar keeps the batch and retries; markers make that safe.
            self.metrics.batchesUnavailable.increment()
            self.logger.warning("could not apply a usage batch", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            self.replyError(to: routingID, correlationID: correlationID, error)
            return
        }
        self.reply(to: routingID, correlationID: correlationID, .batchAck(ack))
    }

    /// Hands the batch to the sinks; its ack goes out once they have it (from `asyncReplies`), or
    /// at the loop's next turn when the sink queue refused it (counted there).
    private func feed(
        _ sinks: SinkFanOut, _ record: UsageBatchRecord, _ result: BatchApplyResult, ack: Tollgate_V1_BatchAck,
        to routingID: [UInt8], correlationID: UInt64
    ) {
        let event = AppliedBatch(
            collectorID: self.configuration.collectorID, batch: record, duplicateKeyIDs: result.duplicateKeyIDs,
            appliedAt: self.clock.now()
        )
        let replies = self.asyncReplies
        replies.begin()
        let delivered = sinks.offer(.applied(event)) {
            replies.push(routingID: routingID, correlationID: correlationID, .batchAck(ack))
        }
        if !delivered {
            replies.push(routingID: routingID, correlationID: correlationID, .batchAck(ack))
        }
    }

    private func handleKeyLookup(_ lookup: Tollgate_V1_KeyLookup, from routingID: [UInt8], correlationID: UInt64) {
        do {
            var info = Tollgate_V1_KeyInfo()
            info.keyID = lookup.keyID
            if let entry = try self.registry.lookup(keyID: lookup.keyID, on: self.redis()) {
                info.known = true
                info.revoked = entry.revoked
                info.name = entry.key.name
                info.plan = entry.key.plan
                info.effectivePlanJson = Data(entry.effectivePlanJSON)
                info.version = entry.version
                if lookup.hasLease, !entry.revoked, lookup.lease.keyID == lookup.keyID {
                    // The key's first lease, in the same round trip.
                    info.lease = try self.grantLease(lookup.lease, entry: entry, on: self.redis())
                }
            } else {
                info.known = false
                info.version = try self.registry.version(on: self.redis())
            }
            self.reply(to: routingID, correlationID: correlationID, .keyInfo(info))
        } catch {
            self.replyError(to: routingID, correlationID: correlationID, error)
        }
    }

    /// `UNAVAILABLE` for Redis trouble (retry later), `INTERNAL` for a corrupt record, `MALFORMED` for bad input.
    func replyError(to routingID: [UInt8], correlationID: UInt64, _ error: StoreError) {
        var reply = Tollgate_V1_ErrorReply()
        switch error.code {
        case .unavailable, .redis: reply.code = .unavailable
        case .corruptRecord: reply.code = .internal
        case .invalidInput: reply.code = .malformed
        }
        reply.message = error.message
        self.reply(to: routingID, correlationID: correlationID, .error(reply))
    }
}
