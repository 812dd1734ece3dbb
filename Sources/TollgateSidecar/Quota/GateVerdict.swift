import TollgateCore

/// One request's question to the quota gate: may `units` of `feature` be spent by `keyID` now?
///
/// Made once per key and feature and kept (the proxy keeps one per connection): the key id is
/// compacted and the feature found in the plan here, not on every decision. A class of constants,
/// so handing one to `decide` costs a reference count rather than a copy of its fields.
public final class GateRequest: Sendable {
    /// The key id.
    public let keyID: String
    /// The key's effective plan, as the collector resolved it, compiled for the gate.
    public let plan: GatePlan
    /// The feature the call counts against.
    public let feature: FeatureName
    /// Units the call spends (1 for a plain call).
    public let units: UInt64
    /// `keyID` as the gate's table holds it.
    let id: CompactKeyID
    /// The feature's position in `plan.rules`; -1 when the plan does not have it.
    let rule: Int32
    /// The `RateLimit` fields' policy names, as sf-strings: the feature's quota, the rate tier.
    let quotaFieldName: String
    let rateFieldName: String
    /// The feature's reset interval in the plan; nil when the plan does not meter it.
    public let interval: ResetInterval?

    /// Creates a request on a compiled plan (shared: see `GatePlan`).
    public init(keyID: String, plan: GatePlan, feature: FeatureName, units: UInt64 = 1) {
        self.keyID = keyID
        self.plan = plan
        self.feature = feature
        self.units = units
        self.id = CompactKeyID(keyID)
        self.rule = plan.ruleIndex(of: feature).map(Int32.init) ?? -1
        self.quotaFieldName = RateLimitHeaders.sfString(plan.quotaName(of: feature))
        self.rateFieldName = RateLimitHeaders.sfString(plan.rateTierName ?? "")
        if case .metered(let metered)? = plan.effectivePlan.features[feature] {
            self.interval = metered.interval
        } else {
            self.interval = nil
        }
    }

    /// Creates a request, compiling `plan` for it (tests and one-off checks; the proxy shares plans).
    public convenience init(keyID: String, plan: EffectivePlan, feature: FeatureName, units: UInt64 = 1) {
        self.init(keyID: keyID, plan: GatePlan(plan), feature: feature, units: units)
    }

}

/// The gate's answer.
///
/// An admission is plain numbers (no strings, no references), so returning and copying one costs
/// a few words; the names the `RateLimit` fields need come from the request when a response is
/// written (`headers(for:)`).
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

    /// The `RateLimit` / `RateLimit-Policy` content for the response to `request` (built on each call).
    public func headers(for request: GateRequest) -> RateLimitHeaders { limits.headers(for: request) }
}

/// The figures of the `RateLimit` and `RateLimit-Policy` response fields, as plain numbers: the
/// key's quota for the feature and its rate tier, each when it has one.
///
/// A verdict carries these rather than `RateLimitHeaders` so that deciding allocates and retains
/// nothing; the policy names (the metered feature's, the rate tier's) come from the request's plan
/// where a response is written (`headers(for:)`, `RateLimitFields`).
public struct GateLimits: Sendable, Hashable {
    /// One policy and its current state: `q` units per `w` seconds, `r` remaining, reset in `t` seconds.
    public struct Item: Sendable, Hashable {
        /// The quota `q`.
        public var quota: UInt64
        /// Remaining units `r`.
        public var remaining: UInt64
        /// Seconds until the quota resets `t`.
        public var resetSeconds: UInt64
        /// The window `w` in seconds, if the policy has one.
        public var windowSeconds: UInt64?

        /// Creates an item.
        public init(quota: UInt64, windowSeconds: UInt64?, remaining: UInt64, resetSeconds: UInt64) {
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

    /// The header content for `request`'s response: the quota (named after the metered feature)
    /// first, then the rate tier (named after the tier).
    public func headers(for request: GateRequest) -> RateLimitHeaders {
        headers(quotaName: quota == nil ? "" : request.plan.quotaName(of: request.feature), rateName: request.plan.rateTierName ?? "")
    }

    /// The header content with the given policy names.
    public func headers(quotaName: String, rateName: String) -> RateLimitHeaders {
        var headers = RateLimitHeaders()
        for (name, item) in [(quotaName, quota), (rateName, rate)] {
            guard let item else { continue }
            headers.policies.append(.init(name: name, quota: item.quota, windowSeconds: item.windowSeconds))
            headers.limits.append(.init(name: name, remaining: item.remaining, resetSeconds: item.resetSeconds))
        }
        return headers
    }
}

/// A call the gate admitted: plain numbers, cheap to return and copy.
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
    /// The feature refused (the rate tier's name when the tier refused).
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
}
