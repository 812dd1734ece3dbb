/// A token-bucket rate limit: `capacity` tokens, refilled at `refill`; one token per request by default.
public struct RateTier: Sendable, Hashable, Codable {
    /// The tier's name, used as the `RateLimit` policy name (e.g. `burst`).
    public var name: String
    /// The most tokens natural refill fills the bucket to.
    public var capacity: UInt64
    /// How fast tokens come back.
    public var refill: RefillRate
    /// What a payment buys when the bucket is empty; nil means a limited request is simply blocked.
    public var paidRefill: PaidRefill?

    /// Creates a tier.
    public init(name: String = "rate", capacity: UInt64, refill: RefillRate, paidRefill: PaidRefill? = nil) {
        self.name = name
        self.capacity = capacity
        self.refill = refill
        self.paidRefill = paidRefill
    }
}

/// A refill rate as an exact fraction: `tokens` every `perSeconds` seconds (100 per minute = 100/60).
public struct RefillRate: Sendable, Hashable, Codable {
    /// Tokens added per `perSeconds`.
    public var tokens: UInt64
    /// The seconds over which `tokens` are added; at least 1.
    public var perSeconds: UInt64

    /// Creates a rate; `perSeconds` of 0 is treated as 1.
    public init(tokens: UInt64, perSeconds: UInt64 = 1) {
        self.tokens = tokens
        self.perSeconds = Swift.max(1, perSeconds)
    }
}

/// A paid top-up of a rate-limited key's token bucket.
public struct PaidRefill: Sendable, Hashable, Codable {
    /// The price of one refill.
    public var price: Money
    /// Tokens one refill adds (the bucket may go above capacity).
    public var tokens: UInt64

    /// Creates a paid refill.
    public init(price: Money, tokens: UInt64) {
        self.price = price
        self.tokens = tokens
    }
}
