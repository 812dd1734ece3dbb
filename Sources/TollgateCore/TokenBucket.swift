/// A token bucket in exact fixed point: tokens are counted in nano-tokens (10⁻⁹ token) and time in
/// nanoseconds, so a rate of `tokens` per `perSeconds` adds exactly `Δns × tokens / perSeconds`
/// nano-tokens, with the division's remainder carried forward: no drift, however often it is read.
///
/// Natural refill never fills past `capacity`. A paid refill may lift the level above capacity; while
/// the level is at or above capacity there is no natural refill, so those burst tokens neither grow
/// nor get clipped until spent. Time going backwards adds nothing.
///
/// Threading: a value type; the owner serialises access.
///
/// ```swift
/// var bucket = TokenBucket(tier: tier, at: now)
/// switch bucket.consume(1, at: now) {
/// case .allowed: serve()
/// case .limited(let retryAfterNanoseconds): reject(retryAfter: retryAfterNanoseconds)
/// }
/// ```
public struct TokenBucket: Sendable, Hashable, Codable {
    /// Nano-tokens per token.
    public static let nanoTokensPerToken: Int64 = 1_000_000_000

    /// The bucket's capacity in nano-tokens (saturated to Int64).
    public private(set) var capacityNanoTokens: Int64
    /// The refill rate.
    public private(set) var refill: RefillRate
    /// The level in nano-tokens as of `updatedAt`.
    public private(set) var nanoTokens: Int64
    /// The latest time the bucket has been brought up to.
    public private(set) var updatedAt: Timestamp
    /// The remainder of the last refill division, in units of 1/`perSeconds` nano-token.
    private var carry: UInt64

    /// Creates a full bucket (or one holding `tokens`) for `tier` at time `now`.
    public init(tier: RateTier, tokens: UInt64? = nil, at now: Timestamp) {
        let capacity = Self.nano(tier.capacity)
        self.init(capacityNanoTokens: capacity, refill: tier.refill, nanoTokens: tokens.map(Self.nano) ?? capacity, at: now)
    }

    /// Creates a bucket with an exact level in nano-tokens (e.g. 4.84 tokens = 4_840_000_000).
    public init(capacityNanoTokens: Int64, refill: RefillRate, nanoTokens: Int64, at now: Timestamp) {
        self.capacityNanoTokens = Swift.max(0, capacityNanoTokens)
        self.refill = refill
        self.nanoTokens = Swift.max(0, nanoTokens)
        self.updatedAt = now
        self.carry = 0
    }

    /// Whole tokens as of `updatedAt`, rounded down.
    public var wholeTokens: UInt64 { UInt64(nanoTokens / Self.nanoTokensPerToken) }

    /// The level `now` would show, without changing the bucket.
    public func nanoTokens(at now: Timestamp) -> Int64 {
        var copy = self
        copy.advance(to: now)
        return copy.nanoTokens
    }

    /// Brings the bucket up to `now`: natural refill, capped at capacity, none while at or above it.
    public mutating func advance(to now: Timestamp) {
        let elapsed = now.nanoseconds(since: updatedAt)
        guard elapsed > 0 else { return }                      // backwards or still: nothing added
        updatedAt = now
        guard nanoTokens < capacityNanoTokens else {
            carry = 0                                          // full or bursting: refill is idle
            return
        }
        let perSeconds = UInt64(Swift.max(1, refill.perSeconds))
        let product = UInt64(elapsed).multipliedFullWidth(by: refill.tokens)
        let (numerator, o1) = product.low.addingReportingOverflow(carry)
        let high = product.high &+ (o1 ? 1 : 0)
        guard high < perSeconds else {                         // an absurd gap: the bucket is full anyway
            fill()
            return
        }
        let (added, remainder) = perSeconds.dividingFullWidth((high, numerator))
        let room = UInt64(capacityNanoTokens - nanoTokens)
        if added >= room {
            fill()
        } else {
            nanoTokens += Int64(added)
            carry = remainder
        }
    }

    /// Takes `tokens` at `now` if they are there; otherwise says how long until they will be.
    public mutating func consume(_ tokens: UInt64 = 1, at now: Timestamp) -> RateDecision {
        advance(to: now)
        let needed = Self.nano(tokens)
        if needed <= nanoTokens {
            nanoTokens -= needed
            return .allowed(remainingNanoTokens: nanoTokens)
        }
        return .limited(retryAfterNanoseconds: nanosecondsUntil(nanoTokens: needed))
    }

    /// Adds paid tokens at `now`; the level may go above capacity (saturating at Int64).
    public mutating func addPaidTokens(_ tokens: UInt64, at now: Timestamp) {
        advance(to: now)
        nanoTokens = Timestamp.saturatingAdd(nanoTokens, Self.nano(tokens))
        if nanoTokens >= capacityNanoTokens { carry = 0 }
    }

    /// Nanoseconds of natural refill until the level reaches `target`; nil if refill never gets there
    /// (zero rate, or a target above capacity that only a payment can reach).
    public func nanosecondsUntil(nanoTokens target: Int64) -> Int64? {
        if target <= nanoTokens { return 0 }
        guard target <= capacityNanoTokens, refill.tokens > 0 else { return nil }
        // Need Δ with floor((Δ·tokens + carry) / perSeconds) ≥ deficit, i.e. Δ ≥ (deficit·perSeconds − carry) / tokens.
        let deficit = UInt64(target - nanoTokens)
        let perSeconds = UInt64(Swift.max(1, refill.perSeconds))
        let product = deficit.multipliedFullWidth(by: perSeconds)
        let (low, borrow) = product.low.subtractingReportingOverflow(carry)
        let high = product.high &- (borrow ? 1 : 0)
        guard high < refill.tokens else { return nil }
        let (q, r) = refill.tokens.dividingFullWidth((high, low))
        let wait = r == 0 ? q : q &+ 1
        return wait > UInt64(Int64.max) ? nil : Int64(wait)
    }

    private mutating func fill() {
        nanoTokens = capacityNanoTokens
        carry = 0
    }

    static func nano(_ tokens: UInt64) -> Int64 {
        let (r, overflow) = tokens.multipliedReportingOverflow(by: UInt64(nanoTokensPerToken))
        return overflow || r > UInt64(Int64.max) ? .max : Int64(r)
    }
}

/// The outcome of asking a token bucket for tokens.
public enum RateDecision: Sendable, Hashable {
    /// Taken; this many nano-tokens remain.
    case allowed(remainingNanoTokens: Int64)
    /// Not enough tokens; natural refill gets there after this many nanoseconds (nil: never without a payment).
    case limited(retryAfterNanoseconds: Int64?)

    /// Whether the tokens were taken.
    public var isAllowed: Bool {
        if case .allowed = self { return true }
        return false
    }

    /// Whole seconds to wait, rounded up (for `Retry-After`); nil when allowed or when refill never suffices.
    public var retryAfterSeconds: UInt64? {
        guard case .limited(let ns?) = self else { return nil }
        return Timestamp.epoch.secondsRoundedUp(until: Timestamp(nanoseconds: ns))
    }
}
