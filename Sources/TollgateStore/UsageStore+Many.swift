import TollgateRedis

extension UsageStore {
    /// One counter hash to read: a key, a feature and a period.
    public struct CounterQuery: Sendable, Hashable {
        /// The key id.
        public var keyID: String
        /// The feature.
        public var feature: String
        /// The period id.
        public var periodID: String

        /// A query for one key, feature and period.
        public init(keyID: String, feature: String, periodID: String) {
            self.keyID = keyID
            self.feature = feature
            self.periodID = periodID
        }
    }

    /// The counters of each query, in order, read in one pipeline (zero where nothing was counted).
    ///
    /// The same records and parsing as `usage(keyID:feature:periodID:on:)`, for many keys at once.
    public func usage(_ queries: [CounterQuery], on connection: RedisConnection) throws(StoreError) -> [UsageCounters] {
        let limits = self.configuration.limits
        for query in queries {
            try UsageBatchRecord.checkName(query.keyID, "key_id", limits: limits, allowColon: false)
            try UsageBatchRecord.checkName(query.periodID, "period_id", limits: limits, allowColon: false)
            try UsageBatchRecord.checkName(query.feature, "feature", limits: limits, allowColon: false)
        }
        guard !queries.isEmpty else { return [] }
        let replies = try self.metrics.timed(self.metrics.usageTimer) { () throws(StoreError) in
            try StoreError.wrapping("reading usage") {
                try connection.pipeline(queries.map {
                    ["HGETALL", RedisArgument(RedisKeys.usage(keyID: $0.keyID, feature: $0.feature, periodID: $0.periodID))]
                })
            }
        }
        var counters: [UsageCounters] = []
        counters.reserveCapacity(replies.count)
        for reply in replies {
            if let message = reply.errorMessage { throw StoreError(.redis, "reading usage: \(message)") }
            counters.append(try UsageCounters(hashFields: Self.pairs(reply)))
        }
        return counters
    }
}
