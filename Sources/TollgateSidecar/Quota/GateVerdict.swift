import TollgateCore

/// One request's question to the quota gate: may `units` of `feature` be spent by `keyID` now?
public struct GateRequest: Sendable, Hashable {
    /// The key id.
    public var keyID: String
    /// The key's effective plan, as the collector resolved it.
    public var plan: EffectivePlan
    /// The feature the call counts against.
    public var feature: FeatureName
    /// Units the call spends (1 for a plain call).
    public var units: UInt64

    /// Creates a request.
    public init(keyID: String, plan: EffectivePlan, feature: FeatureName, units: UInt64 = 1) {
        self.keyID = keyID
        self.plan = plan
        self.feature = feature
        self.units = units
    }
}

/// The gate's answer.
public enum GateVerdict: Sendable, Hashable {
    /// Serve the call.
    case admit(GateAdmission)
    /// Refuse it.
    case refuse(GateRefusal)

    /// Whether the call may be served.
    public var isAdmitted: Bool {
        if case .admit = self { return true }
        return false
    }

    /// The `RateLimit` / `RateLimit-Policy` content for the response.
    public var headers: RateLimitHeaders {
        switch self {
        case .admit(let admission): admission.headers
        case .refuse(let refusal): refusal.headers
        }
    }
}

/// A call the gate admitted.
public struct GateAdmission: Sendable, Hashable {
    /// Units taken from leases this sidecar holds (they settle those leases when reported).
    public var leasedUnits: UInt64
    /// Admitted without a lease because the collector could not be reached (fail-open).
    public var unreachable: Bool
    /// Headers for the response.
    public var headers: RateLimitHeaders
    /// Included units left, as far as this sidecar knows (`UInt64.max` for an unmetered feature).
    public var remaining: UInt64

    /// Creates an admission.
    public init(leasedUnits: UInt64, unreachable: Bool = false, headers: RateLimitHeaders = .none, remaining: UInt64 = .max) {
        self.leasedUnits = leasedUnits
        self.unreachable = unreachable
        self.headers = headers
        self.remaining = remaining
    }
}

/// A call the gate refused, and what to answer.
public struct GateRefusal: Sendable, Hashable {
    /// Why.
    public enum Reason: Sendable, Hashable {
        /// The quota is spent: 429.
        case quotaExhausted
        /// The key's token bucket is empty: 429.
        case rateLimited
        /// The quota (or the bucket) is spent and a payment buys more: 402 with an x402 challenge.
        case paymentRequired(price: Money, buys: PaymentGrant)
        /// The plan switches the feature off (or does not have it): 403.
        case forbidden
        /// No collector answered and the plan fails closed: 503.
        case collectorUnreachable
    }

    /// Why.
    public var reason: Reason
    /// The feature refused.
    public var feature: FeatureName
    /// `Retry-After` seconds, when waiting cures it.
    public var retryAfterSeconds: UInt64?
    /// Headers for the response.
    public var headers: RateLimitHeaders

    /// Creates a refusal.
    public init(reason: Reason, feature: FeatureName, retryAfterSeconds: UInt64? = nil, headers: RateLimitHeaders = .none) {
        self.reason = reason
        self.feature = feature
        self.retryAfterSeconds = retryAfterSeconds
        self.headers = headers
    }
}
