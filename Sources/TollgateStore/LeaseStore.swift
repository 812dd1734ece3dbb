import TollgateCore
import TollgateRedis

/// Leases of quota in Redis: grants cut from what nobody holds, returns, and reclaim on expiry.
///
/// One hash per key, feature and period (`RedisKeys.leases`) holds, per holder (a sidecar boot,
/// `<sidecar id>|<boot epoch>`), the units it was granted and has neither used nor returned, and
/// when the collector reclaims them. Every step is one Lua call on the key's slot, next to the
/// usage counters, so the invariant the fleet relies on holds at every instant:
///
///     units used + units outstanding ≤ budget + credits
///
/// where `units used` is the applied usage (`UsageStore`, which settles leased units in the same
/// script that counts them) and `budget` is the feature's `EffectiveMeteredFeature.leaseBudget`.
///
/// Threading: a `Sendable` value; each call blocks on the connection it is given.
///
/// ```swift
/// let leases = LeaseStore()
/// let grant = try leases.grant(LeaseGrantRequest(keyID: id, feature: "api_call", period: period,
///     holder: LeaseStore.holder(sidecarID: "sc-1", bootEpoch: 7), requested: 100, budget: 10_000),
///     at: now, on: connection)
/// ```
public struct LeaseStore: Sendable {
    /// Sizes and lifetimes.
    public struct Configuration: Sendable, Hashable {
        /// Grant sizes and lease life (see `LeaseAllocator`).
        public var allocator = LeaseAllocator(minSlice: 1, maxSlice: 1_000, shareDivisor: 2, ttl: .seconds(30))
        /// How long after a lease's expiry the collector waits before reclaiming it: time for the
        /// holder's last usage batch to arrive, so units spent just before expiry are settled, not
        /// handed out again.
        public var reclaimGrace: Duration = .seconds(10)
        /// How long lease hashes outlive their period.
        public var retention: Duration = .seconds(86_400)

        /// The defaults: slices of 1…1,000 units, k = 2, 30 s leases, 10 s grace.
        public init() {}
    }

    /// The configuration.
    public let configuration: Configuration
    private let limits = UsageBatchLimits()

    /// A store with `configuration`.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The holder name of one sidecar boot: `<sidecar id>|<boot epoch>`.
    public static func holder(sidecarID: String, bootEpoch: UInt64) -> String {
        "\(sidecarID)|\(bootEpoch)"
    }

    /// Grants a slice of what nobody holds (possibly 0 units: exhausted), reclaiming expired leases first.
    public func grant(_ request: LeaseGrantRequest, at now: Timestamp, on connection: RedisConnection) throws(StoreError) -> LeaseGrantResult {
        try self.check(keyID: request.keyID, feature: request.feature, periodID: request.period.id)
        let allocator = self.configuration.allocator
        let nowMs = now.milliseconds
        let expires = min(nowMs + allocator.ttlNanoseconds / 1_000_000, request.period.end.milliseconds)
        let retention = Int64(self.configuration.retention.components.seconds)
        let keyTTL = max(1, request.period.end.seconds - now.seconds + retention)
        // Lua numbers are doubles: budgets beyond 2^53 are unbounded in practice and clamp there.
        let budget = min(request.budget ?? Self.unbounded, Self.unbounded)
        let reply = try StoreError.wrapping("granting a lease") {
            try connection.evalScript(Self.grantScript, keys: [
                RedisArgument(RedisKeys.usage(keyID: request.keyID, feature: request.feature, periodID: request.period.id)),
                RedisArgument(RedisKeys.leases(keyID: request.keyID, feature: request.feature, periodID: request.period.id)),
            ], args: [
                RedisArgument(request.holder), RedisArgument(nowMs), RedisArgument(budget), RedisArgument(request.requested),
                RedisArgument(allocator.minSlice), RedisArgument(allocator.maxSlice), RedisArgument(allocator.shareDivisor),
                RedisArgument(expires), RedisArgument(self.configuration.reclaimGrace.components.seconds * 1_000),
                RedisArgument(keyTTL),
            ])
        }
        guard let values = reply.array?.compactMap(\.int), values.count == 8, values.allSatisfy({ $0 >= 0 }) else {
            throw StoreError(.corruptRecord, "lease grant script answered \(reply)")
        }
        return LeaseGrantResult(
            units: UInt64(values[0]), leaseID: UInt64(values[1]), expiresAt: Timestamp(milliseconds: expires),
            unleased: UInt64(values[2]), used: UInt64(values[3]), credits: UInt64(values[4]), outstanding: UInt64(values[5]),
            holders: UInt64(values[6]), othersOutstanding: UInt64(values[7])
        )
    }

    /// Takes back up to `units` a holder will not use; returns how many it actually held.
    ///
    /// Not idempotent by itself: the sidecar sends a return once and never retries it (a lost
    /// return only delays those units until the lease expires).
    @discardableResult
    public func giveBack(keyID: String, feature: String, periodID: String, holder: String, units: UInt64, on connection: RedisConnection) throws(StoreError) -> UInt64 {
        try self.check(keyID: keyID, feature: feature, periodID: periodID)
        guard units > 0 else { return 0 }
        let reply = try StoreError.wrapping("returning a lease") {
            try connection.evalScript(Self.returnScript, keys: [
                RedisArgument(RedisKeys.leases(keyID: keyID, feature: feature, periodID: periodID)),
            ], args: [RedisArgument(holder), RedisArgument(units)])
        }
        guard let value = reply.int, value >= 0 else {
            throw StoreError(.corruptRecord, "lease return script answered \(reply)")
        }
        return UInt64(value)
    }

    /// Units each holder has outstanding (expired or not), for the usage API and tests.
    public func outstanding(keyID: String, feature: String, periodID: String, on connection: RedisConnection) throws(StoreError) -> [String: UInt64] {
        try self.check(keyID: keyID, feature: feature, periodID: periodID)
        let reply = try StoreError.wrapping("reading leases") {
            try connection.send("HGETALL", RedisArgument(RedisKeys.leases(keyID: keyID, feature: feature, periodID: periodID)))
        }
        var result: [String: UInt64] = [:]
        for (field, value) in try UsageStore.pairs(reply) where field.hasPrefix("h:") {
            result[String(field.dropFirst(2))] = value
        }
        return result
    }

    private func check(keyID: String, feature: String, periodID: String) throws(StoreError) {
        try UsageBatchRecord.checkName(keyID, "key_id", limits: self.limits, allowColon: false)
        try UsageBatchRecord.checkName(feature, "feature", limits: self.limits, allowColon: false)
        try UsageBatchRecord.checkName(periodID, "period_id", limits: self.limits, allowColon: false)
    }

    /// 2^53: the largest budget Lua's doubles hold exactly.
    static let unbounded: UInt64 = 1 << 53

    /// KEYS: [1] the usage hash (`units`, `credit`), [2] the lease hash. ARGV: holder, now (ms),
    /// budget, requested, min slice, max slice, share divisor k, expiry (ms), reclaim grace (ms),
    /// lease hash TTL (s). Returns {granted, lease id, unleased after, used, credits, outstanding after, live holders,
    /// outstanding held by others}.
    ///
    /// Holders whose reclaim time passed are dropped first (their units go back to the pool). The
    /// grant is `LeaseAllocator.grantSize`: min(max(requested, min), max, max(1, unleased / (k ·
    /// holders)), unleased), where holders counts the live holders and the requester.
    static let grantScript = RedisScript("""
    local me, now, budget, requested = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
    local minSlice, maxSlice, k = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
    local expires, grace, ttl = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
    local used = tonumber(redis.call('HGET', KEYS[1], 'units') or '0')
    local credits = tonumber(redis.call('HGET', KEYS[1], 'credit') or '0')
    local flat = redis.call('HGETALL', KEYS[2])
    local held, reclaim = {}, {}
    for i = 1, #flat, 2 do
      local prefix, name = string.sub(flat[i], 1, 2), string.sub(flat[i], 3)
      if prefix == 'h:' then held[name] = tonumber(flat[i + 1])
      elseif prefix == 'e:' then reclaim[name] = tonumber(flat[i + 1]) end
    end
    local outstanding, holders, known = 0, 0, false
    for name, units in pairs(held) do
      if (reclaim[name] or 0) <= now then
        redis.call('HDEL', KEYS[2], 'h:' .. name, 'e:' .. name)
      else
        outstanding = outstanding + units
        holders = holders + 1
        if name == me then known = true end
      end
    end
    if not known then holders = holders + 1 end
    local unleased = budget + credits - used - outstanding
    if unleased < 0 then unleased = 0 end
    local grant = 0
    if requested > 0 and unleased > 0 then
      local share = math.floor(unleased / (k * holders))
      if share < 1 then share = 1 end
      grant = math.min(math.max(requested, minSlice), maxSlice, share, unleased)
    end
    local id = 0
    if grant > 0 then
      redis.call('HINCRBY', KEYS[2], 'h:' .. me, grant)
      local until_ms = expires + grace
      if until_ms > tonumber(redis.call('HGET', KEYS[2], 'e:' .. me) or '0') then
        redis.call('HSET', KEYS[2], 'e:' .. me, string.format('%d', until_ms))
      end
      id = redis.call('HINCRBY', KEYS[2], 'n', 1)
      redis.call('EXPIRE', KEYS[2], ttl)
    end
    return {grant, id, unleased - grant, used, credits, outstanding + grant, holders, outstanding - (held[me] or 0)}
    """)

    /// KEYS: [1] the lease hash. ARGV: holder, units. Returns the units taken back.
    static let returnScript = RedisScript("""
    local field = 'h:' .. ARGV[1]
    local held = tonumber(redis.call('HGET', KEYS[1], field) or '0')
    local back = math.min(held, tonumber(ARGV[2]))
    if back > 0 then redis.call('HINCRBY', KEYS[1], field, -back) end
    return back
    """)
}

/// What a sidecar asks for.
public struct LeaseGrantRequest: Sendable, Hashable {
    /// The API key id.
    public var keyID: String
    /// The feature.
    public var feature: String
    /// The period the lease is for (it never outlives it).
    public var period: Period
    /// `LeaseStore.holder(sidecarID:bootEpoch:)`.
    public var holder: String
    /// Units wanted; 0 only reads the figures.
    public var requested: UInt64
    /// `EffectiveMeteredFeature.leaseBudget`; nil is unbounded.
    public var budget: UInt64?

    /// Creates a request.
    public init(keyID: String, feature: String, period: Period, holder: String, requested: UInt64, budget: UInt64?) {
        self.keyID = keyID
        self.feature = feature
        self.period = period
        self.holder = holder
        self.requested = requested
        self.budget = budget
    }
}

/// What the grant script decided.
public struct LeaseGrantResult: Sendable, Hashable {
    /// Units granted; 0 means nothing is left to lease.
    public var units: UInt64
    /// The lease's id within its key, feature and period (0 when nothing was granted).
    public var leaseID: UInt64
    /// When the holder must stop spending it (the collector reclaims it a grace period later).
    public var expiresAt: Timestamp
    /// Units nobody holds after this grant.
    public var unleased: UInt64
    /// Units used this period (applied usage).
    public var used: UInt64
    /// Units credited this period.
    public var credits: UInt64
    /// Units outstanding in live leases after this grant.
    public var outstanding: UInt64
    /// Live holders, the requester included.
    public var holders: UInt64
    /// Units outstanding in live leases of other holders (not the requester's).
    public var othersOutstanding: UInt64
}
