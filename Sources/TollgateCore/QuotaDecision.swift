/// A key's consumption of one metered feature in the current period: the input to a decision.
public struct FeatureUsage: Sendable, Hashable, Codable {
    /// Units served this period, overage units included.
    public var used: UInt64
    /// Units added by top-ups (paid packs, admin credits) this period; they raise the included quota.
    public var credits: UInt64
    /// Units served as overage this period.
    public var overageUnits: UInt64
    /// Atomic units charged for overage this period.
    public var overageCharged: UInt64

    /// Creates usage; all zero by default (a fresh period).
    public init(used: UInt64 = 0, credits: UInt64 = 0, overageUnits: UInt64 = 0, overageCharged: UInt64 = 0) {
        self.used = used
        self.credits = credits
        self.overageUnits = overageUnits
        self.overageCharged = overageCharged
    }

    /// The included quota: `limit + credits` (saturating).
    public func included(limit: UInt64) -> UInt64 {
        let (sum, overflow) = limit.addingReportingOverflow(credits)
        return overflow ? .max : sum
    }

    /// Included units not yet used: `limit + credits − (used − overageUnits)`, never below zero.
    public func remaining(limit: UInt64) -> UInt64 {
        let usedIncluded = used >= overageUnits ? used - overageUnits : 0
        let included = included(limit: limit)
        return included > usedIncluded ? included - usedIncluded : 0
    }

    /// Records what a served decision consumed (nothing for a refusal).
    public mutating func record(_ decision: QuotaDecision, requested: UInt64) {
        guard decision.allowed else { return }
        used = Self.add(used, requested)
        if case .serveOverage(let units, let charge) = decision.outcome {
            overageUnits = Self.add(overageUnits, units)
            overageCharged = Self.add(overageCharged, charge.atomicUnits)
        }
    }

    private static func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? .max : s
    }
}

/// What to do with one request, and what to tell the client.
public struct QuotaDecision: Sendable, Hashable {
    /// Whether to serve the request.
    public var allowed: Bool
    /// Included units left after this decision (`UInt64.max` for an unmetered, enabled feature).
    public var remaining: UInt64
    /// The over-quota policy that decided; nil when the request fit within the quota (or the feature is a switch).
    public var policyApplied: OverQuotaPolicy?
    /// Whether an overage spend cap sent the decision to its fallback.
    public var spendCapReached: Bool
    /// The outcome the adapter carries out.
    public var outcome: QuotaOutcome
    /// `Retry-After` in seconds for a refusal that time will cure (period end, or tokens refilled).
    public var retryAfterSeconds: UInt64?
    /// `RateLimit-Policy` / `RateLimit` content, for every response, not only refusals.
    public var headers: RateLimitHeaders

    /// Creates a decision.
    public init(
        allowed: Bool, remaining: UInt64, policyApplied: OverQuotaPolicy? = nil, spendCapReached: Bool = false,
        outcome: QuotaOutcome, retryAfterSeconds: UInt64? = nil, headers: RateLimitHeaders = .none
    ) {
        self.allowed = allowed
        self.remaining = remaining
        self.policyApplied = policyApplied
        self.spendCapReached = spendCapReached
        self.outcome = outcome
        self.retryAfterSeconds = retryAfterSeconds
        self.headers = headers
    }
}

/// The action an adapter takes for a request.
public enum QuotaOutcome: Sendable, Hashable {
    /// Serve within the included quota.
    case serve
    /// Serve; `units` of the request are overage, charged `charge`.
    case serveOverage(units: UInt64, charge: Money)
    /// Refuse with 429; retry after this many seconds (nil: not cured by waiting alone).
    case block(retryAfterSeconds: UInt64?)
    /// Refuse with 402 and an x402 challenge for `price`, which buys `buys`.
    case paymentRequired(price: Money, buys: PaymentGrant)
    /// Refuse with 403: the plan switches the feature off.
    case forbidden
}
