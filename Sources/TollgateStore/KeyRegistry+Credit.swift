import TollgateCore
import TollgateRedis

extension KeyRegistry {
    /// Largest number of units one credit may add (the store's counter bound, so sums never overflow).
    public static let maxCreditUnits: UInt64 = UsageBatchLimits().maxCounterValue

    /// Credits `units` of `feature` to key `keyID` for the period containing `now`; nil when the key is unknown.
    ///
    /// The units go to the `credit` field of `tg:{key}:u:<feature>:<period>`, which the lease
    /// allocator counts as included quota on top of the limit; the period comes from the key's
    /// effective plan at `now`. With an `idempotencyKey`, the script claims
    /// `tg:{key}:cr:<idempotencyKey>` with `SET NX` in the same call, so a retried credit counts
    /// once (`.duplicate`), and reusing the idempotency key for another feature or amount is
    /// refused (`.conflict`). The counters and the marker live until the period ends plus `retention`.
    /// Throws `.invalidInput` when the feature is not a metered feature of the key's plan or
    /// `units` is 0 or above ``maxCreditUnits``.
    public func credit(
        _ units: UInt64,
        feature: FeatureName,
        keyID: String,
        idempotencyKey: String? = nil,
        at now: Timestamp,
        retention: Duration = UsageStore.Configuration().counterRetention,
        on connection: RedisConnection
    ) throws(StoreError) -> CreditResult? {
        guard units > 0, units <= Self.maxCreditUnits else {
            throw StoreError(.invalidInput, "units must be between 1 and \(Self.maxCreditUnits)")
        }
        if let idempotencyKey {
            try UsageBatchRecord.checkName(idempotencyKey, "idempotency key", limits: self.limits, allowColon: true)
        }
        guard let entry = try self.lookup(keyID: keyID, on: connection) else { return nil }
        guard case .metered(let metered)? = entry.effectivePlan.feature(feature) else {
            throw StoreError(.invalidInput, "plan \(entry.key.plan) has no metered feature \"\(feature)\"")
        }
        let period = metered.period(containing: now)
        let retentionSeconds = max(1, retention.components.seconds)
        let ttl = max(period.end.seconds - now.seconds + retentionSeconds, retentionSeconds)
        var keys = [
            RedisArgument(RedisKeys.usage(keyID: keyID, feature: feature.rawValue, periodID: period.id)),
            RedisArgument(RedisKeys.features(keyID: keyID, periodID: period.id)),
        ]
        if let idempotencyKey { keys.append(RedisArgument(RedisKeys.creditMarker(keyID: keyID, idempotencyKey: idempotencyKey))) }
        let marker = "\(feature.rawValue):\(units):\(period.id)"
        let reply = try StoreError.wrapping("crediting units") {
            try connection.evalScript(Self.creditScript, keys: keys, args: [
                RedisArgument(units), RedisArgument(ttl), RedisArgument(feature.rawValue), RedisArgument(marker),
            ])
        }
        guard let parts = reply.array, parts.count == 3, let applied = parts[0].int, let recorded = parts[1].string,
              let total = parts[2].int.flatMap(UInt64.init(exactly:))
        else { throw StoreError(.redis, "crediting units: unexpected reply \(reply)") }
        if applied == 1 {
            let version = try StoreError.wrapping("bumping the version") {
                try Self.version(connection.send("INCR", RedisArgument(RedisKeys.version)))
            }
            return CreditResult(outcome: .applied, feature: feature, periodID: period.id, units: units, totalCredit: total, version: version)
        }
        // A marker from before: `<feature>:<units>:<period>`.
        let fields = recorded.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let version = try self.version(on: connection)
        guard fields.count == 3, let recordedUnits = UInt64(fields[1]) else {
            throw StoreError(.corruptRecord, "credit marker of key \(keyID.prefix(12)) holds \"\(recorded)\"")
        }
        let same = fields[0] == feature.rawValue && recordedUnits == units
        return CreditResult(
            outcome: same ? .duplicate : .conflict, feature: FeatureName(fields[0]), periodID: fields[2], units: recordedUnits,
            totalCredit: same ? try self.creditTotal(keyID: keyID, feature: fields[0], periodID: fields[2], on: connection) : 0,
            version: version
        )
    }

    /// The `credit` field of one key, feature and period (0 when absent).
    func creditTotal(keyID: String, feature: String, periodID: String, on connection: RedisConnection) throws(StoreError) -> UInt64 {
        try StoreError.wrapping("reading credits") {
            let reply = try connection.send("HGET", RedisArgument(RedisKeys.usage(keyID: keyID, feature: feature, periodID: periodID)),
                                            RedisArgument(RedisKeys.Field.credit))
            return reply.int.flatMap(UInt64.init(exactly:)) ?? 0
        }
    }

    /// KEYS: [1] counter hash, [2] the period's feature set, [3] optional idempotency marker.
    /// ARGV: [1] units, [2] TTL seconds, [3] feature, [4] marker value.
    /// Returns {1, marker, total credit} when credited, {0, the earlier marker, 0} when the marker existed.
    static let creditScript = RedisScript("""
    if KEYS[3] and not redis.call('SET', KEYS[3], ARGV[4], 'NX', 'EX', ARGV[2]) then
      return {0, redis.call('GET', KEYS[3]), 0}
    end
    local total = redis.call('HINCRBY', KEYS[1], 'credit', ARGV[1])
    redis.call('SADD', KEYS[2], ARGV[3])
    if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then
      redis.call('EXPIRE', KEYS[1], ARGV[2])
    end
    if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then
      redis.call('EXPIRE', KEYS[2], ARGV[2])
    end
    return {1, ARGV[4], total}
    """)
}
