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

    /// The `RateLimit` / `RateLimit-Policy` figures for the response.
    public var limits: GateLimits {
        switch self {
        case .admit(let admission): admission.limits
        case .refuse(let refusal): refusal.limits
        }
    }

    /// The `RateLimit` / `RateLimit-Policy` content for the response (built on each call).
    public var headers: RateLimitHeaders { limits.headers }
}

/// The figures of the `RateLimit` and `RateLimit-Policy` response fields, as plain numbers: the
/// key's quota for the feature and its rate tier, each when it has one.
///
/// A verdict carries these rather than `RateLimitHeaders` so that deciding allocates nothing; the
/// field values are built only where a response is written (`headers`, `HTTPHeaders.addRateLimit`).
public struct GateLimits: Sendable, Hashable {
    /// One policy and its current state: `q` units per `w` seconds, `r` remaining, reset in `t` seconds.
    public struct Item: Sendable, Hashable {
        /// The policy's name (a feature name or a rate tier name).
        public var name: String
        /// The quota `q`.
        public var quota: UInt64
        /// Remaining units `r`.
        public var remaining: UInt64
        /// Seconds until the quota resets `t`.
        public var resetSeconds: UInt64
        /// The window `w` in seconds, if the policy has one.
        public var windowSeconds: UInt64?

        /// Creates an item.
        public init(name: String, quota: UInt64, windowSeconds: UInt64?, remaining: UInt64, resetSeconds: UInt64) {
            self.name = name
            self.quota = quota
            self.windowSeconds = windowSeconds
            self.remaining = remaining
            self.resetSeconds = resetSeconds
        }
    }

    /// The feature's quota in its period, if metered.
    public var quota: Item?
    /// The key's rate tier (its token bucket), if it has one.
    public var rate: Item?

    /// Creates figures.
    public init(quota: Item? = nil, rate: Item? = nil) {
        self.quota = quota
        self.rate = rate
    }

    /// No fields.
    public static let none = GateLimits()

    /// Whether there is nothing to send.
    public var isEmpty: Bool { quota == nil && rate == nil }

    /// The header content: the quota first, then the rate tier.
    public var headers: RateLimitHeaders {
        var headers = RateLimitHeaders()
        for item in [quota, rate].compactMap({ $0 }) {
            headers.policies.append(.init(name: item.name, quota: item.quota, windowSeconds: item.windowSeconds))
            headers.limits.append(.init(name: item.name, remaining: item.remaining, resetSeconds: item.resetSeconds))
        }
        return headers
    }
}

/// A call the gate admitted.
public struct GateAdmission: Sendable, Hashable {
    /// Units taken from leases this sidecar holds (they settle those leases when reported).
    public var leasedUnits: UInt64
    /// Admitted without a lease because the collector could not be reached (fail-open).
    public var unreachable: Bool
    /// Figures for the response's `RateLimit` fields.
    public var limits: GateLimits
    /// Included units left, as far as this sidecar knows (`UInt64.max` for an unmetered feature).
    public var remaining: UInt64

    /// Creates an admission.
    public init(leasedUnits: UInt64, unreachable: Bool = false, limits: GateLimits = .none, remaining: UInt64 = .max) {
        self.leasedUnits = leasedUnits
        self.unreachable = unreachable
        self.limits = limits
        self.remaining = remaining
    }

    /// Headers for the response (built on each call).
    public var headers: RateLimitHeaders { limits.headers }
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
        /// (Boxed, so that every other verdict stays small to copy.)
        indirect case paymentRequired(price: Money, buys: PaymentGrant)
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
    /// Figures for the response's `RateLimit` fields.
    public var limits: GateLimits

    /// Creates a refusal.
    public init(reason: Reason, feature: FeatureName, retryAfterSeconds: UInt64? = nil, limits: GateLimits = .none) {
        self.reason = reason
        self.feature = feature
        self.retryAfterSeconds = retryAfterSeconds
        self.limits = limits
    }

    /// Headers for the response (built on each call).
    public var headers: RateLimitHeaders { limits.headers }
}
