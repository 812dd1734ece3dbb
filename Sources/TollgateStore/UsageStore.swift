import TollgateCore
import TollgateRedis

/// Applies usage batches to Redis exactly once per API key, and reads the counters back.
///
/// Threading: a `Sendable` value with no connection of its own. Every call takes the
/// `RedisConnection` to use and blocks on it, so call it from the thread that owns the connection
/// (the collector's ingest thread) or inside `RedisClient.withConnection`.
///
/// Exactly once: a batch is split by API key; each key's share is one Lua call that sets the
/// marker `tg:{key}:b:<sidecar>:<epoch>:<seq>` with `NX` and, only if it was new, adds the counters.
/// All calls of a batch go in one pipelined round trip. If the connection breaks half way, some
/// keys are applied and some not; the sender's retry applies exactly the rest. Markers live for
/// `markerTTL`, the longest a batch can be retried.
///
/// ```swift
/// let store = UsageStore()
/// let result = try store.apply(batch, on: connection)    // .applied or .duplicate
/// let today = try store.usage(keyID: keyID, feature: "api_call", periodID: "d20261123", on: connection)
/// ```
public struct UsageStore: Sendable {
    /// How long markers and counters live, and what input is accepted.
    public struct Configuration: Sendable, Hashable {
        /// How long a batch marker lives: the longest time a batch can be retried; default 7 days.
        public var markerTTL: Duration = .seconds(7 * 86_400)
        /// How long counters live after their period ends; default 35 days.
        public var counterRetention: Duration = .seconds(35 * 86_400)
        /// Bounds on batch contents.
        public var limits = UsageBatchLimits()

        /// The defaults.
        public init() {}
    }

    /// The store's settings.
    public let configuration: Configuration
    let clock: any TollgateClock
    let metrics = StoreMetrics()

    /// A store with the given settings; `clock` decides counter expiry (the wall clock by default).
    public init(configuration: Configuration = Configuration(), clock: any TollgateClock = WallClock()) {
        self.configuration = configuration
        self.clock = clock
    }

    /// Validates `batch` and applies it in one round trip; `.duplicate` when every part was applied before.
    ///
    /// Throws `.invalidInput` (nothing written; retrying cannot help), or `.unavailable`/`.redis`
    /// (some keys may be applied; retrying the same batch applies exactly the rest).
    public func apply(_ batch: UsageBatchRecord, on connection: RedisConnection) throws(StoreError) -> BatchApplyResult {
        try batch.validate(limits: self.configuration.limits)
        // Group by key, in first-seen order, so each key's share is one atomic script call.
        var order: [String] = []
        var byKey: [String: [UsageAggregateRecord]] = [:]
        for aggregate in batch.aggregates {
            if byKey[aggregate.keyID] == nil { order.append(aggregate.keyID) }
            byKey[aggregate.keyID, default: []].append(aggregate)
        }
        guard !order.isEmpty else { return BatchApplyResult(appliedAggregates: 0, duplicateAggregates: 0) }
        let calls = order.map { self.applyCall(keyID: $0, aggregates: byKey[$0]!, of: batch) }
        let replies = try self.metrics.timed(self.metrics.applyTimer) { () throws(StoreError) in
            try StoreError.wrapping("applying batch \(batch.sidecarID)/\(batch.bootEpoch)/\(batch.sequence)") {
                try connection.pipelineScript(Self.applyScript, calls: calls)
            }
        }
        var result = BatchApplyResult(appliedAggregates: 0, duplicateAggregates: 0)
        var failure: StoreError?
        for (keyID, reply) in zip(order, replies) {
            let count = byKey[keyID]!.count
            switch reply {
            case .integer(1): result.appliedAggregates += count
            case .integer(0):
                result.duplicateAggregates += count
                result.duplicateKeyIDs.insert(keyID)
            default:
                failure = failure ?? StoreError(.redis, "applying key \(keyID.prefix(12)) of batch \(batch.sidecarID)/\(batch.bootEpoch)/\(batch.sequence): \(reply)")
            }
        }
        self.metrics.aggregatesApplied.increment(by: result.appliedAggregates)
        self.metrics.aggregatesDuplicate.increment(by: result.duplicateAggregates)
        if let failure { throw failure }
        return result
    }

    /// The counters of one key, feature and period (all zero when nothing was counted).
    public func usage(keyID: String, feature: String, periodID: String, on connection: RedisConnection) throws(StoreError) -> UsageCounters {
        try self.checkQuery(keyID: keyID, periodID: periodID, feature: feature)
        let reply = try self.metrics.timed(self.metrics.usageTimer) { () throws(StoreError) in
            try StoreError.wrapping("reading usage") {
                try connection.send("HGETALL", RedisArgument(RedisKeys.usage(keyID: keyID, feature: feature, periodID: periodID)))
            }
        }
        return try UsageCounters(hashFields: Self.pairs(reply))
    }

    /// The counters of every feature the key used in the period, by feature.
    public func usage(keyID: String, periodID: String, on connection: RedisConnection) throws(StoreError) -> [String: UsageCounters] {
        try self.checkQuery(keyID: keyID, periodID: periodID, feature: nil)
        return try self.metrics.timed(self.metrics.usageTimer) { () throws(StoreError) in
            let members = try StoreError.wrapping("reading features") {
                try connection.send("SMEMBERS", RedisArgument(RedisKeys.features(keyID: keyID, periodID: periodID)))
            }
            let features = (members.array ?? []).compactMap(\.string).sorted()
            let replies = try StoreError.wrapping("reading usage") {
                try connection.pipeline(features.map { ["HGETALL", RedisArgument(RedisKeys.usage(keyID: keyID, feature: $0, periodID: periodID))] })
            }
            var result: [String: UsageCounters] = [:]
            for (feature, reply) in zip(features, replies) {
                result[feature] = try UsageCounters(hashFields: Self.pairs(reply))
            }
            return result
        }
    }

    private func checkQuery(keyID: String, periodID: String, feature: String?) throws(StoreError) {
        let limits = self.configuration.limits
        try UsageBatchRecord.checkName(keyID, "key_id", limits: limits, allowColon: false)
        try UsageBatchRecord.checkName(periodID, "period_id", limits: limits, allowColon: false)
        if let feature { try UsageBatchRecord.checkName(feature, "feature", limits: limits, allowColon: false) }
    }

    /// The field/value pairs of an `HGETALL` reply; non-numeric values are a corrupt record.
    static func pairs(_ reply: RedisReply) throws(StoreError) -> [(String, UInt64)] {
        guard let elements = reply.array, elements.count % 2 == 0 else {
            throw StoreError(.corruptRecord, "expected field/value pairs, got \(reply)")
        }
        var pairs: [(String, UInt64)] = []
        for index in stride(from: 0, to: elements.count, by: 2) {
            guard let field = elements[index].string, let text = elements[index + 1].string, let value = UInt64(text) else {
                throw StoreError(.corruptRecord, "counter field \(elements[index]) holds \(elements[index + 1])")
            }
            pairs.append((field, value))
        }
        return pairs
    }
}
