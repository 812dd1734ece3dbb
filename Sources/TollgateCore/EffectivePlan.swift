/// A plan with one key's overrides applied: what the decision functions actually consult.
public struct EffectivePlan: Sendable, Hashable, Codable {
    /// The name of the underlying plan.
    public var planName: String
    /// The resolved features, by name.
    public var features: [FeatureName: EffectiveFeature]
    /// The token bucket for the key, if any.
    public var rateTier: RateTier?

    /// Creates an effective plan directly (normally via `Plan.resolved(with:)`).
    public init(planName: String, features: [FeatureName: EffectiveFeature], rateTier: RateTier?) {
        self.planName = planName
        self.features = features
        self.rateTier = rateTier
    }

    /// The resolved feature named `name`, if the plan has it.
    public func feature(_ name: FeatureName) -> EffectiveFeature? { features[name] }
}

/// A resolved feature.
public enum EffectiveFeature: Sendable, Hashable, Codable {
    /// A metered feature with its concrete reset interval.
    case metered(EffectiveMeteredFeature)
    /// A switch.
    case boolean(enabled: Bool)
}

/// A metered feature for one key: limit and policy after overrides, billing anchor applied.
public struct EffectiveMeteredFeature: Sendable, Hashable, Codable {
    /// The feature's name (also the `RateLimit` policy name).
    public var name: FeatureName
    /// Units included per period.
    public var limit: UInt64
    /// What one unit is.
    public var unit: String
    /// The concrete reset interval (billing cycles carry the key's anchor).
    public var interval: ResetInterval
    /// What exhausting the quota means.
    public var policy: OverQuotaPolicy
    /// How exactly the fleet enforces the limit.
    public var quotaMode: QuotaMode
    /// What a sidecar does while the collector is unreachable.
    public var whenCollectorUnreachable: CollectorUnreachablePolicy

    /// Creates a resolved metered feature.
    public init(
        name: FeatureName, limit: UInt64, unit: String = "request", interval: ResetInterval, policy: OverQuotaPolicy = .block,
        quotaMode: QuotaMode = .strict, whenCollectorUnreachable: CollectorUnreachablePolicy = .failClosed
    ) {
        self.name = name
        self.limit = limit
        self.unit = unit
        self.interval = interval
        self.policy = policy
        self.quotaMode = quotaMode
        self.whenCollectorUnreachable = whenCollectorUnreachable
    }

    /// The period containing `t`.
    public func period(containing t: Timestamp) -> Period { interval.period(containing: t) }
}

extension Plan {
    /// This plan with `overrides` applied for one key.
    public func resolved(with overrides: KeyOverrides = KeyOverrides()) -> EffectivePlan {
        var resolved: [FeatureName: EffectiveFeature] = [:]
        for (name, feature) in features {
            switch feature {
            case .boolean(let enabled):
                resolved[name] = .boolean(enabled: overrides.enabled[name] ?? enabled)
            case .metered(let m):
                resolved[name] = .metered(EffectiveMeteredFeature(
                    name: name,
                    limit: overrides.limits[name] ?? m.limit,
                    unit: m.unit,
                    interval: m.reset.interval(billingAnchor: overrides.billingAnchor),
                    policy: overrides.policies[name] ?? m.policy,
                    quotaMode: overrides.quotaModes[name] ?? m.quotaMode,
                    whenCollectorUnreachable: m.whenCollectorUnreachable
                ))
            }
        }
        let tier = overrides.removesRateTier ? nil : (overrides.rateTier ?? rateTier)
        return EffectivePlan(planName: name, features: resolved, rateTier: tier)
    }
}
