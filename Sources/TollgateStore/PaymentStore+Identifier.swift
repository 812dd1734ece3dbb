import TollgateRedis

/// A payment-identifier id (the x402 extension's idempotency key) as a claim carries it.
public struct PaymentIdentifierClaim: Sendable, Hashable {
    /// The client's id (16 to 128 of `[A-Za-z0-9_-]`).
    public var id: String
    /// What the id is bound to: hex SHA-256 of the key, the route and the decoded payment. Another
    /// fingerprint under the same id is a conflict.
    public var fingerprint: String
    /// How long the id lives, claimed and again once settled.
    public var ttlSeconds: Int

    /// Creates a claim.
    public init(id: String, fingerprint: String, ttlSeconds: Int) {
        self.id = id
        self.fingerprint = fingerprint
        self.ttlSeconds = ttlSeconds
    }
}

/// A payment-identifier id being settled: the `PAYMENT-RESPONSE` it got, the response kept for
/// retries (nil when it was not kept), and how long the id lives from now.
public struct SettledIdentifier: Sendable, Hashable {
    public var id: String
    public var paymentResponse: String
    public var response: [UInt8]?
    public var ttlSeconds: Int

    public init(id: String, paymentResponse: String, response: [UInt8]?, ttlSeconds: Int) {
        self.id = id
        self.paymentResponse = paymentResponse
        self.response = response
        self.ttlSeconds = ttlSeconds
    }
}

/// What a payment-identifier id holds, seen by a payment with a given fingerprint.
public enum IdentifierState: Sendable, Hashable {
    /// Never seen (or expired, or released): the payment is handled as new.
    case unknown
    /// The id was used with another payment (or key, or route).
    case conflict
    /// The same payment is claimed and not settled yet (or its settlement's outcome is unknown).
    case inProgress
    /// The same payment settled: the `PAYMENT-RESPONSE` value it was sent with, and the kept
    /// response (a serialized `PaidResponse`), nil when it was over the bound.
    case settled(paymentResponse: String, response: [UInt8]?)
}

/// Payment-identifier ids: a hash per id on the key's slot (`tg:{<key>}:pid:<id>`), claimed with
/// the payment's nonce, settled together with the response it got, released with the claim.
extension PaymentStore {
    /// What `id` holds for a payment with `fingerprint` (read only: a lookup before verifying).
    public func identifierState(keyID: String, id: String, fingerprint: String, on connection: RedisConnection) throws(StoreError) -> IdentifierState {
        try Self.checkIdentifier(id, fingerprint: fingerprint)
        try self.check(payer: "0", nonce: "0", keyID: keyID, claimID: "0")
        let reply = try StoreError.wrapping("reading a payment identifier") {
            try connection.send("HMGET", RedisArgument(RedisKeys.paymentIdentifier(keyID: keyID, id: id)), "st", "fp", "prh", "resp")
        }
        let fields = reply.array ?? []
        guard fields.count == 4, let state = fields[0].string else { return .unknown }
        guard fields[1].string == fingerprint else { return .conflict }
        guard state == "settled" else { return .inProgress }
        return .settled(paymentResponse: fields[2].string ?? "", response: fields[3].bytes)
    }

    /// Settles the id's claim and keeps `response` with it, in one script: a retry sees either the
    /// claim in flight or the settled id with its response, never one without the other. The id
    /// then lives `ttlSeconds` from now. False when the claim is not this one's any more (expired).
    @discardableResult
    public func settleIdentifier(
        _ id: String, keyID: String, claimID: String, transaction: String, paymentResponse: String, response: [UInt8]?,
        ttlSeconds: Int, on connection: RedisConnection
    ) throws(StoreError) -> Bool {
        let identifier = SettledIdentifier(id: id, paymentResponse: paymentResponse, response: response, ttlSeconds: ttlSeconds)
        let step = try self.settleIdentifierStep(identifier, keyID: keyID, claimID: claimID, transaction: transaction)
        return try Self.run(step, "settling a payment identifier", on: connection).int == 1
    }

    func settleIdentifierStep(_ identifier: SettledIdentifier, keyID: String, claimID: String, transaction: String) throws(StoreError) -> RedisPipelineStep {
        try Self.checkIdentifier(identifier.id, fingerprint: String(repeating: "0", count: 64))
        try self.check(payer: "0", nonce: "0", keyID: keyID, claimID: claimID)
        return .script(Self.identifierSettleScript, RedisScriptCall(keys: [RedisArgument(RedisKeys.paymentIdentifier(keyID: keyID, id: identifier.id))], args: [
            RedisArgument(claimID), RedisArgument(transaction), RedisArgument(identifier.paymentResponse),
            RedisArgument(identifier.response == nil ? "0" : "1"), RedisArgument(identifier.response ?? []), RedisArgument(max(1, identifier.ttlSeconds)),
        ]))
    }

    /// Claims the id for `claimID`; nil when claimed now, else what the id already holds.
    func claimIdentifier(_ identifier: PaymentIdentifierClaim, keyID: String, claimID: String, on connection: RedisConnection) throws(StoreError) -> IdentifierState? {
        try Self.checkIdentifier(identifier.id, fingerprint: identifier.fingerprint)
        let key = RedisKeys.paymentIdentifier(keyID: keyID, id: identifier.id)
        let reply = try StoreError.wrapping("claiming a payment identifier") {
            try connection.evalScript(Self.identifierClaimScript, keys: [RedisArgument(key)],
                                      args: [RedisArgument(claimID), RedisArgument(identifier.fingerprint), RedisArgument(max(1, identifier.ttlSeconds))])
        }
        if reply.int == 1 { return nil }
        let state = try self.identifierState(keyID: keyID, id: identifier.id, fingerprint: identifier.fingerprint, on: connection)
        // Gone between the two calls (released or expired): as good as in flight; the client retries.
        return state == .unknown ? .inProgress : state
    }

    /// Frees the id if `claimID` still holds it unsettled.
    func releaseIdentifier(_ id: String, keyID: String, claimID: String, on connection: RedisConnection) throws(StoreError) {
        _ = try StoreError.wrapping("releasing a payment identifier") {
            try connection.evalScript(Self.identifierReleaseScript, keys: [RedisArgument(RedisKeys.paymentIdentifier(keyID: keyID, id: id))],
                                      args: [RedisArgument(claimID)])
        }
    }

    /// Ids reach Redis key names: only the extension's own alphabet, bounded; fingerprints are hex.
    static func checkIdentifier(_ id: String, fingerprint: String) throws(StoreError) {
        let idOK = !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
        guard idOK else { throw StoreError(.invalidInput, "a payment identifier is 1 to 128 letters, digits, '-' or '_'") }
        guard fingerprint.utf8.count == 64, fingerprint.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw StoreError(.invalidInput, "a payment fingerprint is 64 lowercase hex digits")
        }
    }

    /// KEYS[1] the id. ARGV: claim, fingerprint, TTL. 1 when claimed now, 0 when the id exists.
    static let identifierClaimScript = RedisScript("""
    if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
    redis.call('HSET', KEYS[1], 'st', 'claimed', 'claim', ARGV[1], 'fp', ARGV[2])
    redis.call('EXPIRE', KEYS[1], ARGV[3])
    return 1
    """)

    /// KEYS[1] the id. ARGV[1] the claim: deleted only while that claim holds it unsettled.
    static let identifierReleaseScript = RedisScript("""
    local v = redis.call('HMGET', KEYS[1], 'st', 'claim')
    if v[1] == 'claimed' and v[2] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
    return 0
    """)

    /// KEYS[1] the id. ARGV: claim, transaction, PAYMENT-RESPONSE value, "1" if a response is kept,
    /// the response, TTL. 1 when settled now, 0 if the claim is not (or no longer) this one.
    static let identifierSettleScript = RedisScript("""
    local v = redis.call('HMGET', KEYS[1], 'st', 'claim')
    if v[1] ~= 'claimed' or v[2] ~= ARGV[1] then return 0 end
    redis.call('HSET', KEYS[1], 'st', 'settled', 'tx', ARGV[2], 'prh', ARGV[3])
    if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'resp', ARGV[5]) end
    redis.call('EXPIRE', KEYS[1], ARGV[6])
    return 1
    """)
}
