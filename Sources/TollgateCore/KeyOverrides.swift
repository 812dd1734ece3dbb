/// Per-key changes to its plan: limits, policies, switches, the rate tier and the billing anchor.
///
/// Overrides only modify features the plan has; `unknownFeatures(in:)` lists the others so the config
/// loader can refuse them instead of silently ignoring a typo.
public struct KeyOverrides: Sendable, Hashable, Codable {
    /// Replacement limits of metered features.
    public var limits: [FeatureName: UInt64]
    /// Replacement over-quota policies of metered features.
    public var policies: [FeatureName: OverQuotaPolicy]
    /// Replacement quota modes of metered features.
    public var quotaModes: [FeatureName: QuotaMode]
    /// Replacement on/off values of boolean features.
    public var enabled: [FeatureName: Bool]
    /// A replacement rate tier (nil keeps the plan's).
    public var rateTier: RateTier?
    /// Removes the plan's rate tier for this key when true.
    public var removesRateTier: Bool
    /// The start of the key's billing cycle; anchors `billing_cycle` resets.
    public var billingAnchor: Timestamp?

    /// Creates overrides; the default changes nothing.
    public init(
        limits: [FeatureName: UInt64] = [:],
        policies: [FeatureName: OverQuotaPolicy] = [:],
        quotaModes: [FeatureName: QuotaMode] = [:],
        enabled: [FeatureName: Bool] = [:],
        rateTier: RateTier? = nil,
        removesRateTier: Bool = false,
        billingAnchor: Timestamp? = nil
    ) {
        self.limits = limits
        self.policies = policies
        self.quotaModes = quotaModes
        self.enabled = enabled
        self.rateTier = rateTier
        self.removesRateTier = removesRateTier
        self.billingAnchor = billingAnchor
    }

    /// Overridden features the plan lacks or has with the other kind (metered vs boolean), sorted.
    public func unknownFeatures(in plan: Plan) -> [FeatureName] {
        var unknown = Set<FeatureName>()
        for name in Set(limits.keys).union(policies.keys).union(quotaModes.keys) {
            if case .metered = plan.features[name] { continue }
            unknown.insert(name)
        }
        for name in enabled.keys {
            if case .boolean = plan.features[name] { continue }
            unknown.insert(name)
        }
        return unknown.sorted()
    }
}
