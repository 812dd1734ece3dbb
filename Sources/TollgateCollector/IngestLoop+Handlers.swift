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
            switch try self.codec.decodeFrame(frames[1]) {
            case .usageBatch(let batch, let correlationID, _):
                self.metrics.received("usage_batch")
                self.handleBatch(batch, from: routingID, correlationID: correlationID)
                return
            case .envelope(let decoded):
                envelope = decoded
            }
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
            // `decodeFrame` reads batches into frames itself, except odd encodings it leaves to SwiftProtobuf.
            self.handleBatch(UsageBatchFrame(message: batch), from: routingID, correlationID: correlationID)
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

    /// A payment step runs here, on this thread's own Redis connection, up to the facilitator; the
    /// facilitator's call is started from here too, and its answer (seconds, at worst) comes back
    /// through `asyncReplies`, which the loop drains, running the step's last Redis writes on the
    /// same connection before it replies. No task is started for a step.
    private func handlePaymentRequest(_ request: Tollgate_V1_PaymentRequest, from routingID: [UInt8], correlationID: UInt64) {
        guard let payments = self.configuration.payments else {
            var reply = Tollgate_V1_ErrorReply()
            reply.code = .unsupported
            reply.message = "this collector has no x402 settings"
            self.reply(to: routingID, correlationID: correlationID, .error(reply))
            return
        }
        let stage: PaymentCoordinator.Stage
        do {
            stage = payments.begin(request, on: try self.redis())
        } catch {
            stage = .now(.answered(payments.unavailable(request, error)))
        }
        switch stage {
        case .now(.answered(let result)):
            self.reply(to: routingID, correlationID: correlationID, .paymentResult(result))
        case .now(.finish(let finish)):
            self.finishPayment(finish, to: routingID, correlationID: correlationID)
        case .waiting(let waiting):
            let replies = self.asyncReplies
            replies.begin()
            waiting.start { outcome in
                switch outcome {
                case .answered(let result):
                    replies.push(routingID: routingID, correlationID: correlationID, .reply(.paymentResult(result)))
                case .finish(let finish):
                    replies.push(routingID: routingID, correlationID: correlationID, .finish(finish))
                }
            }
        }
    }

    /// Runs a payment step's last Redis writes on this thread's connection and replies at once;
    /// what the step leaves for afterwards (audit line, metrics, publication) runs after the reply.
    func finishPayment(_ finish: PaymentCoordinator.Finish, to routingID: [UInt8], correlationID: UInt64) {
        let done: PaymentCoordinator.Done
        do {
            done = finish.run(on: try self.redis())
        } catch {
            done = PaymentCoordinator.Done(result: finish.fail(error))
        }
        self.reply(to: routingID, correlationID: correlationID, .paymentResult(done.result))
        done.afterwards?()
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

    /// Queues a batch in the pipeline; an invalid one is REJECTED at once (nothing was written).
    private func handleBatch(_ batch: UsageBatchFrame, from routingID: [UInt8], correlationID: UInt64) {
        do {
            let record = UsageBatchRecord(frame: batch)
            let token = try self.batchPipeline().submit(record)
            let joined = self.batchReplies[token] != nil
            let calls = batch.aggregates.reduce(UInt64(0)) { $0 &+ $1.calls }
            self.batchReplies[token, default: []].append(BatchReply(
                routingID: routingID, correlationID: correlationID, joined: joined, calls: calls,
                record: self.configuration.sinks == nil ? nil : record
            ))
        } catch where error.code == .invalidInput {
            var ack = Tollgate_V1_BatchAck()
            ack.sidecarID = batch.sidecarID
            ack.bootEpoch = batch.bootEpoch
            ack.sequence = batch.sequence
            ack.status = .rejected
            ack.error = error.message
            self.metrics.batchesRejected.increment()
            self.logger.warning("rejected a usage batch", metadata: [
                "tollgate.sidecar": "\(batch.sidecarID)", "tollgate.batch": "\(batch.bootEpoch)/\(batch.sequence)", "error": "\(error)",
            ])
            self.reply(to: routingID, correlationID: correlationID, .batchAck(ack))
        } catch {
            self.metrics.batchesUnavailable.increment()
            self.logger.warning("could not apply a usage batch", metadata: [
                "tollgate.sidecar": "\(batch.sidecarID)", "tollgate.batch": "\(batch.bootEpoch)/\(batch.sequence)", "error": "\(error)",
            ])
            self.replyError(to: routingID, correlationID: correlationID, error)
        }
    }

    /// Acknowledges every batch the pipeline finished: APPLIED or DUPLICATE once Redis committed
    /// it; an error reply (no ack, the sidecar retries) when it did not.
    func acknowledgeCompleted() {
        guard let pipeline = self.pipeline else { return }
        for done in pipeline.takeCompletions() {
            for destination in self.batchReplies.removeValue(forKey: done.token) ?? [] {
                self.acknowledge(done, to: destination)
            }
        }
    }

    private func acknowledge(_ done: UsagePipeline.Completion, to destination: BatchReply) {
        switch done.result {
        case .success(let result):
            var ack = Tollgate_V1_BatchAck()
            ack.sidecarID = done.sidecarID
            ack.bootEpoch = done.bootEpoch
            ack.sequence = done.sequence
            switch destination.joined ? .duplicate : result.outcome {
            case .applied:
                ack.status = .applied
                self.metrics.batchesApplied.increment()
                // A batch partly applied before (a crash half way) counts whole here: a rate, not a bill.
                self.configuration.ingestRate?.count(calls: destination.calls)
            case .duplicate:
                ack.status = .duplicate
                self.metrics.batchesDuplicate.increment()
            }
            if let sinks = self.configuration.sinks, let record = destination.record {
                var fed = result
                if destination.joined {
                    // A second delivery that joined the first: nothing of it was applied itself.
                    fed.duplicateKeyIDs = Set(record.aggregates.map(\.keyID))
                }
                self.feed(sinks, record, fed, ack: ack, to: destination.routingID, correlationID: destination.correlationID)
                return
            }
            self.reply(to: destination.routingID, correlationID: destination.correlationID, .batchAck(ack))
        case .failure(let error):
            // Not acknowledged: the sidecar keeps the batch and retries; markers make that safe.
            self.metrics.batchesUnavailable.increment()
            self.logger.warning("could not apply a usage batch", metadata: [
                "tollgate.sidecar": "\(done.sidecarID)", "tollgate.batch": "\(done.bootEpoch)/\(done.sequence)", "error": "\(error)",
            ])
            self.replyError(to: destination.routingID, correlationID: destination.correlationID, error)
        }
    }

    /// Hands the committed batch to the sinks; its ack goes out once they have it (from
    /// `asyncReplies`, which wakes the loop), or at the loop's next turn when the sink queue refused
    /// it (counted there), so an acknowledged batch is always in the audit log unless dropped.
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
            replies.push(routingID: routingID, correlationID: correlationID, .reply(.batchAck(ack)))
        }
        if !delivered {
            replies.push(routingID: routingID, correlationID: correlationID, .reply(.batchAck(ack)))
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
