/// A named set of features a key subscribes to, and optionally a rate tier.
///
/// ```swift
/// let pro = Plan(name: "pro", features: [
///     .apiCall: .metered(MeteredFeature(limit: 10_000, unit: "call", reset: .day)),
///     "export": .boolean(enabled: true),
/// ], rateTier: RateTier(capacity: 20, refill: RefillRate(tokens: 10)))
/// let effective = pro.resolved(with: KeyOverrides(limits: [.apiCall: 20_000]))
/// ```
public struct Plan: Sendable, Hashable, Codable {
    /// The plan's name, e.g. `free`, `pro`.
    public var name: String
    /// The features, by name.
    public var features: [FeatureName: Feature]
    /// The token bucket applied to every request of a key on this plan, if any.
    public var rateTier: RateTier?

    /// Creates a plan.
    public init(name: String, features: [FeatureName: Feature], rateTier: RateTier? = nil) {
        self.name = name
        self.features = features
        self.rateTier = rateTier
    }
}

/// A plan feature: either counted against a limit, or simply on or off.
public enum Feature: Sendable, Hashable, Codable {
    /// Counted in units against a limit that resets each period.
    case metered(MeteredFeature)
    /// Allowed or forbidden outright.
    case boolean(enabled: Bool)
}

/// A feature counted against a limit per period.
public struct MeteredFeature: Sendable, Hashable, Codable {
    /// Units included per period.
    public var limit: UInt64
    /// What one unit is, for display and `RateLimit-Policy`'s `qu` (e.g. `request`, `token`).
    public var unit: String
    /// When the quota starts afresh; a billing cycle takes its anchor from the key.
    public var reset: ResetSchedule
    /// What exhausting the quota means.
    public var policy: OverQuotaPolicy
    /// How exactly the fleet enforces the limit.
    public var quotaMode: QuotaMode
    /// What a sidecar does while it cannot reach a collector.
    public var whenCollectorUnreachable: CollectorUnreachablePolicy

    /// Creates a metered feature; the defaults are the safe ones (block, strict, fail closed).
    public init(
        limit: UInt64,
        unit: String = "request",
        reset: ResetSchedule = .month,
        policy: OverQuotaPolicy = .block,
        quotaMode: QuotaMode = .strict,
        whenCollectorUnreachable: CollectorUnreachablePolicy = .failClosed
    ) {
        self.limit = limit
        self.unit = unit
        self.reset = reset
        self.policy = policy
        self.quotaMode = quotaMode
        self.whenCollectorUnreachable = whenCollectorUnreachable
    }
}

/// A reset interval as a plan states it: a billing cycle without its anchor, which each key supplies.
public enum ResetSchedule: String, Sendable, Hashable, Codable, CaseIterable {
    /// Every minute.
    case minute
    /// Every hour.
    case hour
    /// Every UTC day.
    case day
    /// Every ISO week (Monday start).
    case week
    /// Every UTC calendar month.
    case month
    /// Monthly from the key's billing-cycle anchor.
    case billingCycle = "billing_cycle"

    /// The concrete interval for a key with billing anchor `anchor`.
    ///
    /// A billing cycle without an anchor falls back to the calendar month, which is exactly the cycle
    /// anchored on the 1st at 00:00, so a key that has no anchor yet is still metered sensibly.
    public func interval(billingAnchor anchor: Timestamp?) -> ResetInterval {
        switch self {
        case .minute: .minute
        case .hour: .hour
        case .day: .day
        case .week: .week
        case .month: .month
        case .billingCycle: anchor.map { .billingCycle(anchor: $0) } ?? .month
        }
    }
}

/// How exactly the fleet enforces a limit.
public enum QuotaMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Sidecars admit only against leased quota: the fleet never exceeds the limit.
    case strict
    /// Sidecars admit from their cached view and report; the fleet converges with a bounded overshoot.
    case optimistic
}

/// What a sidecar does while the collector is unreachable.
public enum CollectorUnreachablePolicy: String, Sendable, Hashable, Codable, CaseIterable {
    /// Keep serving and spool usage for later.
    case failOpen = "fail_open"
    /// Serve only what the held lease still allows.
    case failClosed = "fail_closed"
}
