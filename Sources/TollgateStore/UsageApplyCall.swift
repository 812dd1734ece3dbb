import TollgateCore
import TollgateRedis

/// One run of `UsageStore.applyScript`: one API key's share of one or more batches of one sender.
///
/// Aggregates of the same feature and period are summed into one slot, as long as every sum stays
/// within the batch limit on one counter (so no `HINCRBY` can overflow where one aggregate could
/// not); past it a second slot for the same hash begins.
struct UsageApplyCall {
    /// One batch's part of the call.
    struct Share {
        /// The pipeline's token of the batch.
        var batch: Int
        /// How many of the batch's aggregates the call carries.
        var aggregates: Int
    }

    /// The summed aggregates of one feature and period.
    struct Slot {
        var feature: String
        var periodID: String
        /// `<feature>:<period id>`, the tail of the counter and lease keys.
        var featurePeriod: String
        var counters: UsageCounters
        var leasedUnits: UInt64
    }

    var keyID: String
    /// `<sidecar>|<epoch>`: every batch of a call comes from this sender.
    var holder: String
    var shares: [Share] = []
    var slots: [Slot] = []

    init(keyID: String, holder: String) {
        self.keyID = keyID
        self.holder = holder
    }

    /// Adds one (validated) aggregate of batch `token`.
    mutating func add(_ aggregate: UsageAggregateRecord, of token: Int, limit: UInt64, names: inout KeyTails) {
        if self.shares.last?.batch == token {
            self.shares[self.shares.count - 1].aggregates += 1
        } else {
            self.shares.append(Share(batch: token, aggregates: 1))
        }
        if let index = self.slots.lastIndex(where: { $0.feature == aggregate.feature && $0.periodID == aggregate.periodID }),
           self.slots[index].counters.canAdd(aggregate.counters, limit: limit) {
            self.slots[index].counters.add(aggregate.counters)
            self.slots[index].leasedUnits += aggregate.leasedUnits  // at most the units, so within the limit too
            return
        }
        self.slots.append(Slot(
            feature: aggregate.feature, periodID: aggregate.periodID,
            featurePeriod: names.featurePeriod(aggregate.feature, aggregate.periodID),
            counters: aggregate.counters, leasedUnits: aggregate.leasedUnits
        ))
    }

    /// Writes the `EVALSHA` of this call.
    ///
    /// `markerSuffixes[i]` is `<sidecar>:<epoch>:<sequence>` of `shares[i]`'s batch and `ttls[j]`
    /// the counter TTL in seconds of `slots[j]`.
    func encode(into buffer: inout RedisCommandBuffer, sha: String, markerTTL: Int64, markerSuffixes: [String], ttls: [Int64]) {
        let keyCount = self.shares.count + 3 * self.slots.count
        var argumentCount = 3
        for slot in self.slots {
            argumentCount += 5 + 2 * slot.counters.nonZeroIncrementCount
        }
        buffer.beginCommand(argumentCount: 3 + keyCount + argumentCount)
        buffer.appendArgument("EVALSHA")
        buffer.appendArgument(sha)
        buffer.appendArgument(keyCount)
        // Every key is `tg:{<key id>}:...`, as `RedisKeys` spells it.
        for suffix in markerSuffixes {
            buffer.appendArgument("tg:{", self.keyID, "}:b:", suffix)
        }
        for slot in self.slots {
            buffer.appendArgument("tg:{", self.keyID, "}:u:", slot.featurePeriod)
            buffer.appendArgument("tg:{", self.keyID, "}:f:", slot.periodID)
            buffer.appendArgument("tg:{", self.keyID, "}:l:", slot.featurePeriod)
        }
        buffer.appendArgument(markerTTL)
        buffer.appendArgument(self.holder)
        buffer.appendArgument(self.shares.count)
        for (slot, ttl) in zip(self.slots, ttls) {
            buffer.appendArgument(slot.feature)
            buffer.appendArgument(ttl)
            buffer.appendArgument(slot.counters.latencyMaxMicroseconds)
            buffer.appendArgument(slot.leasedUnits)
            buffer.appendArgument(slot.counters.nonZeroIncrementCount)
            slot.counters.forEachIncrement { field, suffix, value in
                if let suffix {
                    buffer.appendArgument(field, suffix)
                } else {
                    buffer.appendArgument(field)
                }
                buffer.appendArgument(value)
            }
        }
    }
}

/// `<feature>:<period id>` strings, made once per pair rather than once per aggregate.
struct KeyTails {
    private var made: [String: [String: String]] = [:]

    /// `<feature>:<period id>`, the tail of counter and lease keys.
    mutating func featurePeriod(_ feature: String, _ periodID: String) -> String {
        if let known = self.made[feature]?[periodID] { return known }
        if self.made.count > 1_024 { self.made.removeAll() }
        let joined = "\(feature):\(periodID)"
        self.made[feature, default: [:]][periodID] = joined
        return joined
    }
}

extension UsageCounters {
    /// Whether adding `other` keeps every sum at most `limit` (the latency maximum is a maximum, not a sum).
    func canAdd(_ other: UsageCounters, limit: UInt64) -> Bool {
        func fits(_ a: UInt64, _ b: UInt64) -> Bool { a <= limit && b <= limit - a }
        guard fits(self.calls, other.calls), fits(self.units, other.units),
              fits(self.requestBytes, other.requestBytes), fits(self.responseBytes, other.responseBytes),
              fits(self.latencySumMicroseconds, other.latencySumMicroseconds),
              fits(self.overageUnits, other.overageUnits), fits(self.overageChargeAtomic, other.overageChargeAtomic)
        else { return false }
        for statusClass in StatusClass.allCases where !fits(self.statuses[statusClass], other.statuses[statusClass]) {
            return false
        }
        for (name, value) in other.extraUnits where !fits(self.extraUnits[name] ?? 0, value) {
            return false
        }
        return true
    }

    /// How many of `increments` there are (the non-zero sums), without building them.
    var nonZeroIncrementCount: Int {
        var count = 0
        self.forEachIncrement { _, _, _ in count += 1 }
        return count
    }

    /// Calls `body` with each non-zero sum's hash field, in `increments`' order; an extra meter's
    /// field comes as the prefix `x:` and the meter's name, so no joined string is built.
    func forEachIncrement(_ body: (String, String?, UInt64) -> Void) {
        typealias F = RedisKeys.Field
        if self.calls != 0 { body(F.calls, nil, self.calls) }
        if self.units != 0 { body(F.units, nil, self.units) }
        for (index, statusClass) in StatusClass.allCases.enumerated() where self.statuses[statusClass] != 0 {
            body(F.status[index], nil, self.statuses[statusClass])
        }
        if self.requestBytes != 0 { body(F.requestBytes, nil, self.requestBytes) }
        if self.responseBytes != 0 { body(F.responseBytes, nil, self.responseBytes) }
        if self.latencySumMicroseconds != 0 { body(F.latencySum, nil, self.latencySumMicroseconds) }
        if self.overageUnits != 0 { body(F.overageUnits, nil, self.overageUnits) }
        if self.overageChargeAtomic != 0 { body(F.overageCharge, nil, self.overageChargeAtomic) }
        guard !self.extraUnits.isEmpty else { return }
        for name in self.extraUnits.keys.sorted() where self.extraUnits[name]! != 0 {
            body(F.extraPrefix, name, self.extraUnits[name]!)
        }
    }
}
