import TollgateRedis

extension UsagePipeline {
    /// Handles the replies that have arrived; `readable` says a poll found the socket readable, so
    /// it is read first (reading it otherwise would block).
    public func receive(readable: Bool) {
        do {
            if readable, self.isAwaitingReplies { try self.connection.readAvailable() }
            while let reply = try self.connection.bufferedReply() {
                self.handle(reply)
            }
            try self.writeFollowUps()
        } catch {
            self.failAwaiting(error)
        }
    }

    /// Waits for the next reply (up to the connection's command timeout), then handles it and any
    /// others already read.
    public func receiveBlocking() {
        guard self.isAwaitingReplies else { return }
        do {
            self.handle(try self.connection.readReply())
            while let reply = try self.connection.bufferedReply() {
                self.handle(reply)
            }
            try self.writeFollowUps()
        } catch {
            self.failAwaiting(error)
        }
    }

    /// Fails everything in flight if no reply came for the connection's command timeout; the
    /// connection is dropped, since a late reply could no longer be matched.
    public func checkTimeout(now: ContinuousClock.Instant = .now) {
        let timeout = self.connection.configuration.commandTimeout
        guard self.isAwaitingReplies, now - self.lastProgress > timeout else { return }
        self.connection.disconnect()
        self.failAwaiting(RedisError(
            code: .timeout, message: "no reply to pipelined usage scripts within \(timeout)",
            command: "EVALSHA", endpoint: self.connection.configuration.endpoint.description
        ))
    }

    private func handle(_ reply: RedisReply) {
        let entry = self.expected[self.expectedHead]
        self.expectedHead += 1
        if self.expectedHead > 4_096, self.expectedHead * 2 > self.expected.count {
            self.expected.removeFirst(self.expectedHead)
            self.expectedHead = 0
        }
        self.lastProgress = .now
        guard case .call(let id) = entry else {
            return  // a SCRIPT LOAD; the calls resent after it show whether it worked
        }
        let sent = self.calls.removeValue(forKey: id)!
        let metrics = self.store.metrics
        switch reply {
        case .integer(1):
            for share in sent.call.shares {
                self.batches[share.batch]!.result.appliedAggregates += share.aggregates
                metrics.aggregatesApplied.increment(by: share.aggregates)
            }
        case .integer(0):
            for share in sent.call.shares {
                self.batches[share.batch]!.result.duplicateAggregates += share.aggregates
                self.batches[share.batch]!.result.duplicateKeyIDs.insert(sent.call.keyID)
                metrics.aggregatesDuplicate.increment(by: share.aggregates)
            }
        case .integer(-1) where sent.call.shares.count > 1:
            // Some of these batches were applied before and nothing was written: one call per
            // batch follows, reserved now so no batch completes in between.
            for share in sent.call.shares {
                self.batches[share.batch]!.owed += 1
            }
            self.groups[sent.group]?.owed += sent.call.shares.count
            self.splits.append((sent.group, sent.call.keyID, sent.call.shares.map(\.batch)))
        case .error(let message) where message.hasPrefix("NOSCRIPT") && !sent.resentForNoScript:
            // Not run. Load the script (once for every call written before the load) and resend.
            if self.lastScriptLoad < sent.position {
                self.followUps.beginCommand(argumentCount: 3)
                self.followUps.appendArgument("SCRIPT")
                self.followUps.appendArgument("LOAD")
                self.followUps.appendArgument(UsageStore.applyScript.source)
                self.lastScriptLoad = self.commandsWritten
                self.commandsWritten += 1
                self.expected.append(.scriptLoad)
            }
            let resent = self.enqueue(sent.call, group: sent.group, sha: UsageStore.applyScript.sha!, toFollowUps: true)
            self.calls[resent]!.resentForNoScript = true
            self.groups[sent.group]?.owed += 1
        default:
            for share in sent.call.shares where self.batches[share.batch]!.failure == nil {
                let record = self.batches[share.batch]!.record
                self.batches[share.batch]!.failure = StoreError(
                    .redis,
                    "applying key \(sent.call.keyID.prefix(12)) of batch \(record.sidecarID)/\(record.bootEpoch)/\(record.sequence): \(reply)"
                )
            }
        }
        for share in sent.call.shares {
            self.batches[share.batch]!.owed -= 1
            if self.batches[share.batch]!.owed == 0 { self.complete(share.batch) }
        }
        if let group = self.groups[sent.group] {
            if group.owed == 1 {
                self.groups[sent.group] = nil
                metrics.applyTimer.recordNanoseconds((ContinuousClock.now - group.sent).nanosecondsClamped)
            } else {
                self.groups[sent.group]!.owed -= 1
            }
        }
    }

    /// Writes what the replies at hand called for: calls split one per batch, resends after NOSCRIPT.
    private func writeFollowUps() throws {
        if !self.splits.isEmpty {
            self.writeSplits()
        }
        guard self.followUps.commandCount > 0 else { return }
        defer { self.followUps.removeAll() }
        try self.connection.append(self.followUps)
        try self.connection.flush()
    }

    /// One call per batch and key for every call answered -1, reading each batch's aggregates once.
    private func writeSplits() {
        let sha = UsageStore.applyScript.sha!  // a call was written, so it is known
        var wanted: [Int: [String: Int]] = [:]  // batch → key id → group
        var order: [(batch: Int, keyID: String)] = []
        for split in self.splits {
            for token in split.tokens {
                wanted[token, default: [:]][split.keyID] = split.group
                order.append((token, split.keyID))
            }
        }
        self.splits.removeAll()
        var built: [Int: [String: UsageApplyCall]] = [:]
        let limit = self.store.configuration.limits.maxCounterValue
        for (token, keys) in wanted {
            let batch = self.batches[token]!
            var calls: [String: UsageApplyCall] = [:]
            for aggregate in batch.record.aggregates where keys[aggregate.keyID] != nil {
                calls[aggregate.keyID, default: UsageApplyCall(keyID: aggregate.keyID, holder: batch.holder)]
                    .add(aggregate, of: token, limit: limit, names: &self.keyTails)
            }
            built[token] = calls
        }
        for (token, keyID) in order {
            self.enqueue(built[token]![keyID]!, group: wanted[token]![keyID]!, sha: sha, toFollowUps: true, reserved: true)
        }
    }

    /// Every batch still owed a reply fails: its replies are lost with the connection.
    func failAwaiting(_ error: any Error) {
        let failure: StoreError =
            switch error {
            case let error as RedisError: StoreError(error, while: "applying usage batches")
            case let error as StoreError: error
            default: StoreError(.unavailable, "applying usage batches: \(error)")
            }
        self.followUps.removeAll()
        self.splits.removeAll()
        self.expected.removeAll()
        self.expectedHead = 0
        self.calls.removeAll()
        self.groups.removeAll()
        for (token, batch) in self.batches where batch.owed > 0 {
            self.batches[token]!.owed = 0
            if batch.failure == nil { self.batches[token]!.failure = failure }
            self.complete(token)
        }
    }
}
