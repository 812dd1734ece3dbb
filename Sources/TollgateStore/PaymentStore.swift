import TollgateCore
import TollgateRedis

/// Payments in Redis: a fleet-wide claim on each authorization before anything is served, and the
/// settlement ledger with its credit, recorded once.
///
/// A claim is `SET NX` on the authorization's payer and nonce (and a hash on the key's slot for the
/// payment-identifier id, if any: PaymentStore+Identifier.swift), so no other sidecar or collector can use the same payment while it is verified, served and
/// settled. It is released when nothing was served, marked settled after the facilitator settled,
/// and kept until long after the authorization's `validBefore`, so a replay is refused for as long
/// as it could be valid and beyond. The ledger entry, the credit and the key's payment counters are
/// written by one script on the key's slot behind a per-claim marker, so a retried record counts once.
///
/// Threading: a `Sendable` value; each call blocks on the connection it is given.
public struct PaymentStore: Sendable {
    /// Lifetimes.
    public struct Configuration: Sendable, Hashable {
        /// How long a claim outlives the authorization's `validBefore`.
        public var claimMargin: Duration = .seconds(7 * 86_400)
        /// How long the settlement markers and credits live after their period ends.
        public var retention: Duration = .seconds(35 * 86_400)
        /// Ledger entries kept per key (approximately; older ones are trimmed).
        public var ledgerLength = 100_000

        /// The defaults.
        public init() {}
    }

    /// What claiming found.
    public enum ClaimOutcome: Sendable, Hashable {
        /// The payment is ours to serve: `claimID` names the claim in the later steps.
        case claimed(claimID: String)
        /// Someone claimed (or settled) it already: a replay.
        case alreadyUsed
        /// The payment-identifier id is known: what it holds (never `.unknown`).
        case identifierTaken(IdentifierState)
    }

    /// The configuration.
    public let configuration: Configuration
    private let limits = UsageBatchLimits()

    /// A store with `configuration`.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Claims the authorization `nonce` of `payer` (and the payment-identifier `identifier`, when the
    /// client sent one) for `keyID`, until `validBefore` plus the margin (the id: its own TTL). Both
    /// or neither are claimed; an id that is already known answers what it holds instead.
    public func claim(
        payer: String, nonce: String, identifier: PaymentIdentifierClaim? = nil, keyID: String, claimID: String,
        validBefore: Timestamp, at now: Timestamp, on connection: RedisConnection
    ) throws(StoreError) -> ClaimOutcome {
        try self.check(payer: payer, nonce: nonce, keyID: keyID, claimID: claimID)
        let payer = payer.lowercased()
        let nonce = nonce.lowercased()
        let ttl = max(1, validBefore.seconds - now.seconds) + self.configuration.claimMargin.components.seconds
        if let identifier {
            // The id first (the key's slot): a known id is answered from what it holds, and the
            // nonce is then never touched.
            if let state = try self.claimIdentifier(identifier, keyID: keyID, claimID: claimID, on: connection) {
                return .identifierTaken(state)
            }
        }
        let value = "claimed|\(claimID)|\(keyID)"
        let reply = try StoreError.wrapping("claiming a payment") {
            try connection.evalScript(Self.claimScript, keys: [RedisArgument(RedisKeys.paymentClaim(payer: payer, nonce: nonce))],
                                      args: [RedisArgument(value), RedisArgument(ttl)])
        }
        guard reply.int == 1 else {
            if let identifier { try self.releaseIdentifier(identifier.id, keyID: keyID, claimID: claimID, on: connection) }
            return .alreadyUsed
        }
        return .claimed(claimID: claimID)
    }

    /// Gives a claim up (nothing was served or settled): the same payment (and its id) may be sent
    /// again. Only the claim's owner can release it, and never once it is settled.
    public func release(
        payer: String, nonce: String, paymentIdentifier: String? = nil, keyID: String, claimID: String, on connection: RedisConnection
    ) throws(StoreError) {
        _ = try StoreError.wrapping("releasing a payment claim") {
            try connection.evalScript(Self.releaseScript, keys: [RedisArgument(RedisKeys.paymentClaim(payer: payer.lowercased(), nonce: nonce.lowercased()))],
                                      args: [RedisArgument("claimed|\(claimID)|")])
        }
        if let paymentIdentifier { try self.releaseIdentifier(paymentIdentifier, keyID: keyID, claimID: claimID, on: connection) }
    }

    /// Marks a claim settled with `transaction`; it then stays until it expires and is never released.
    /// (A payment-identifier id is settled with its response by `settleIdentifier`.)
    public func markSettled(payer: String, nonce: String, claimID: String, transaction: String, on connection: RedisConnection) throws(StoreError) {
        let step = Self.markSettledStep(payer: payer, nonce: nonce, claimID: claimID, transaction: transaction)
        _ = try Self.run(step, "marking a payment settled", on: connection)
    }

    /// Records a settlement in the key's ledger and credits what it bought, once per claim.
    /// Returns false when this claim was recorded before (nothing changed).
    ///
    /// With `leaseHolder`, one credited unit is leased to that holder at once (until
    /// `leaseReclaimAt`): the paid call itself, served by that sidecar and reported later as a
    /// leased unit. Until its usage arrives, no other sidecar can be granted that unit.
    @discardableResult
    public func record(
        _ settlement: SettlementRecord, leaseHolder: String? = nil, leaseReclaimAt: Timestamp? = nil,
        at now: Timestamp, on connection: RedisConnection
    ) throws(StoreError) -> Bool {
        let step = try self.recordStep(settlement, leaseHolder: leaseHolder, leaseReclaimAt: leaseReclaimAt, at: now)
        return try Self.run(step, "recording a settlement", on: connection).int == 1
    }

    /// What a settled payment writes, in one round trip: the claim marked settled with the
    /// transaction (`markSettled`), the payment-identifier id with its response when there is one
    /// (`settleIdentifier`), and the ledger entry and credit (`record`), then `alongWith` (reads
    /// the caller wants from the same trip, such as the registry version). The writes touch
    /// different keys and none depends on another's effect, so they are pipelined; each is still
    /// one atomic script. Returns whether the settlement was recorded now (false: it was before)
    /// and the replies to `alongWith`.
    public func settle(
        _ settlement: SettlementRecord, nonce: String, identifier: SettledIdentifier? = nil,
        leaseHolder: String? = nil, leaseReclaimAt: Timestamp? = nil, at now: Timestamp,
        alongWith extra: [RedisPipelineStep] = [], on connection: RedisConnection
    ) throws(StoreError) -> (recorded: Bool, extra: [RedisReply]) {
        var steps = [Self.markSettledStep(payer: settlement.payer, nonce: nonce, claimID: settlement.claimID, transaction: settlement.transaction)]
        if let identifier {
            steps.append(try self.settleIdentifierStep(identifier, keyID: settlement.keyID, claimID: settlement.claimID, transaction: settlement.transaction))
        }
        let recordIndex = steps.count
        steps.append(try self.recordStep(settlement, leaseHolder: leaseHolder, leaseReclaimAt: leaseReclaimAt, at: now))
        steps += extra
        let replies = try StoreError.wrapping("recording a settlement") { try connection.pipeline(steps) }
        for (index, reply) in replies.prefix(recordIndex + 1).enumerated() {
            if let message = reply.errorMessage {
                throw StoreError(RedisError(replyError: message, command: "EVALSHA"),
                                 while: index == recordIndex ? "recording a settlement" : index == 0 ? "marking a payment settled" : "settling a payment identifier")
            }
        }
        return (replies[recordIndex].int == 1, Array(replies.dropFirst(recordIndex + 1)))
    }

    static func markSettledStep(payer: String, nonce: String, claimID: String, transaction: String) -> RedisPipelineStep {
        let key = RedisKeys.paymentClaim(payer: payer.lowercased(), nonce: nonce.lowercased())
        return .script(Self.settleScript, RedisScriptCall(keys: [RedisArgument(key)],
                                                          args: [RedisArgument("claimed|\(claimID)|"), RedisArgument("settled|\(claimID)|\(transaction)")]))
    }

    func recordStep(_ settlement: SettlementRecord, leaseHolder: String?, leaseReclaimAt: Timestamp?, at now: Timestamp) throws(StoreError) -> RedisPipelineStep {
        try self.check(payer: settlement.payer, nonce: "0", keyID: settlement.keyID, claimID: settlement.claimID)
        try UsageBatchRecord.checkName(settlement.feature, "feature", limits: self.limits, allowColon: false)
        try UsageBatchRecord.checkName(settlement.periodID, "period_id", limits: self.limits, allowColon: false)
        let end = PeriodEnd.of(settlement.periodID) ?? now
        let retention = self.configuration.retention.components.seconds
        let ttl = max(end.seconds - now.seconds + retention, retention, 1)
        return .script(Self.recordScript, RedisScriptCall(keys: [
            RedisArgument(RedisKeys.settlementMarker(keyID: settlement.keyID, claimID: settlement.claimID)),
            RedisArgument(RedisKeys.settlements(keyID: settlement.keyID)),
            RedisArgument(RedisKeys.usage(keyID: settlement.keyID, feature: settlement.feature, periodID: settlement.periodID)),
            RedisArgument(RedisKeys.features(keyID: settlement.keyID, periodID: settlement.periodID)),
            RedisArgument(RedisKeys.leases(keyID: settlement.keyID, feature: settlement.feature, periodID: settlement.periodID)),
        ], args: [
            RedisArgument(ttl), RedisArgument(self.configuration.ledgerLength), RedisArgument(settlement.creditedUnits),
            RedisArgument(settlement.amountAtomic), RedisArgument(settlement.feature),
            RedisArgument(settlement.creditedUnits > 0 ? (leaseHolder ?? "") : ""), RedisArgument((leaseReclaimAt ?? now).milliseconds),
            "claim", RedisArgument(settlement.claimID), "payer", RedisArgument(settlement.payer),
            "amount", RedisArgument(settlement.amountAtomic), "asset", RedisArgument(settlement.asset),
            "network", RedisArgument(settlement.network), "tx", RedisArgument(settlement.transaction),
            "route", RedisArgument(settlement.route), "feature", RedisArgument(settlement.feature),
            "period", RedisArgument(settlement.periodID), "credited", RedisArgument(settlement.creditedUnits),
            "grant", RedisArgument(settlement.grant), "status", RedisArgument(settlement.status),
            "at_ms", RedisArgument(now.milliseconds),
        ]))
    }

    /// Runs one step on its own; a server error reply is thrown.
    static func run(_ step: RedisPipelineStep, _ doing: String, on connection: RedisConnection) throws(StoreError) -> RedisReply {
        try StoreError.wrapping(doing) { try connection.run(step) }
    }

    /// The key's ledger, newest first, at most `limit` entries.
    public func settlements(keyID: String, limit: Int = 100, on connection: RedisConnection) throws(StoreError) -> [SettlementRecord] {
        try UsageBatchRecord.checkName(keyID, "key_id", limits: self.limits, allowColon: false)
        let reply = try StoreError.wrapping("reading settlements") {
            try connection.send("XREVRANGE", RedisArgument(RedisKeys.settlements(keyID: keyID)), "+", "-", "COUNT", RedisArgument(max(1, limit)))
        }
        return (reply.array ?? []).compactMap { entry -> SettlementRecord? in
            guard let parts = entry.array, parts.count == 2, let fields = parts[1].array else { return nil }
            var map: [String: String] = [:]
            for index in stride(from: 0, to: fields.count - 1, by: 2) {
                if let name = fields[index].string, let value = fields[index + 1].string { map[name] = value }
            }
            return SettlementRecord(
                keyID: keyID, claimID: map["claim"] ?? "", payer: map["payer"] ?? "", amountAtomic: UInt64(map["amount"] ?? "") ?? 0,
                asset: map["asset"] ?? "", network: map["network"] ?? "", transaction: map["tx"] ?? "", route: map["route"] ?? "",
                feature: map["feature"] ?? "", periodID: map["period"] ?? "", creditedUnits: UInt64(map["credited"] ?? "") ?? 0,
                grant: map["grant"] ?? "", status: map["status"] ?? "", atMilliseconds: Int64(map["at_ms"] ?? "") ?? 0
            )
        }
    }

    func check(payer: String, nonce: String, keyID: String, claimID: String) throws(StoreError) {
        try UsageBatchRecord.checkName(keyID, "key_id", limits: self.limits, allowColon: false)
        try UsageBatchRecord.checkName(claimID, "claim id", limits: self.limits, allowColon: false)
        for (value, what) in [(payer, "payer"), (nonce, "nonce")] {
            guard !value.isEmpty, value.utf8.count <= 80, value.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) }) else {
                throw StoreError(.invalidInput, "\(what) must be letters and digits (an address or 0x-hex nonce)")
            }
        }
    }

    /// KEYS[1] the claim. ARGV: value, TTL seconds. 1 when claimed now, 0 when it existed.
    static let claimScript = RedisScript("""
    if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
    return 0
    """)

    /// KEYS[1] the claim. ARGV[1] the owner's prefix `claimed|<claim>|`: deleted only while still so.
    static let releaseScript = RedisScript("""
    local v = redis.call('GET', KEYS[1])
    if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
    return 0
    """)

    /// KEYS[1] the claim. ARGV: the owner's prefix, the settled value (the TTL is kept).
    static let settleScript = RedisScript("""
    local v = redis.call('GET', KEYS[1])
    if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
      redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
      return 1
    end
    return 0
    """)

    /// KEYS: marker, ledger stream, usage hash, feature set, lease hash. ARGV: TTL, ledger length,
    /// credited units, amount, feature, lease holder ("" for none), its reclaim time (ms), then the
    /// ledger's field/value pairs. 1 when recorded now, 0 if before.
    static let recordScript = RedisScript("""
    if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
    local fields = {}
    for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
    if ARGV[6] ~= '' then
      redis.call('HINCRBY', KEYS[5], 'h:' .. ARGV[6], 1)
      if tonumber(ARGV[7]) > tonumber(redis.call('HGET', KEYS[5], 'e:' .. ARGV[6]) or '0') then
        redis.call('HSET', KEYS[5], 'e:' .. ARGV[6], ARGV[7])
      end
      if redis.call('TTL', KEYS[5]) < tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[5], ARGV[1]) end
    end
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
    if tonumber(ARGV[3]) > 0 then redis.call('HINCRBY', KEYS[3], 'credit', ARGV[3]) end
    redis.call('HINCRBY', KEYS[3], 'pay_n', 1)
    redis.call('HINCRBY', KEYS[3], 'pay_amt', ARGV[4])
    redis.call('SADD', KEYS[4], ARGV[5])
    if redis.call('TTL', KEYS[3]) < tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[3], ARGV[1]) end
    if redis.call('TTL', KEYS[4]) < tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[4], ARGV[1]) end
    return 1
    """)
}

/// One settlement as the ledger keeps it.
public struct SettlementRecord: Sendable, Hashable, Codable {
    /// The key that paid (its id).
    public var keyID: String
    /// The claim it settled.
    public var claimID: String
    /// The payer's address.
    public var payer: String
    /// The amount, in atomic units of `asset`.
    public var amountAtomic: UInt64
    /// The token contract.
    public var asset: String
    /// The network (CAIP-2).
    public var network: String
    /// The transaction the facilitator reported.
    public var transaction: String
    /// The route paid for, e.g. `GET /v1/forecast`.
    public var route: String
    /// The feature credited.
    public var feature: String
    /// The period credited.
    public var periodID: String
    /// Units added to the period's quota (0 for a single call or a bucket refill).
    public var creditedUnits: UInt64
    /// What the payment bought: `call`, `units:<n>`, `refill:<tokens>`.
    public var grant: String
    /// `settled`.
    public var status: String
    /// When it was recorded (Unix ms).
    public var atMilliseconds: Int64

    /// Creates a record.
    public init(
        keyID: String, claimID: String, payer: String, amountAtomic: UInt64, asset: String, network: String, transaction: String,
        route: String, feature: String, periodID: String, creditedUnits: UInt64, grant: String, status: String = "settled",
        atMilliseconds: Int64 = 0
    ) {
        self.keyID = keyID
        self.claimID = claimID
        self.payer = payer
        self.amountAtomic = amountAtomic
        self.asset = asset
        self.network = network
        self.transaction = transaction
        self.route = route
        self.feature = feature
        self.periodID = periodID
        self.creditedUnits = creditedUnits
        self.grant = grant
        self.status = status
        self.atMilliseconds = atMilliseconds
    }
}
