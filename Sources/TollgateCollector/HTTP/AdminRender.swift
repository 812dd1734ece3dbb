import Foundation
import TollgateConfig
import TollgateCore
import TollgateStore

/// How the admin API shows keys and effective plans (JSON objects for `JSONSerialization`).
enum AdminRender {
    /// `{id, name, plan, revoked, source, stripe_customer, overrides}`; overrides in the config file's shape.
    static func key(_ stored: RegistryKey) -> [String: Any] {
        let key = stored.key
        return [
            "id": key.id, "name": key.name, "plan": key.plan, "revoked": stored.revoked,
            "source": stored.managedByAdmin ? "admin" : "config",
            "stripe_customer": key.stripeCustomer ?? NSNull(),
            "overrides": overrides(key.overrides),
        ]
    }

    /// Only the overrides a key has: `limits`, `enabled`, `policies`, `modes`, `rate`, `billing_anchor`.
    static func overrides(_ overrides: KeyOverrides) -> [String: Any] {
        var object: [String: Any] = [:]
        if !overrides.limits.isEmpty { object["limits"] = names(overrides.limits) }
        if !overrides.enabled.isEmpty { object["enabled"] = names(overrides.enabled) }
        if !overrides.policies.isEmpty { object["policies"] = names(overrides.policies.mapValues(PlanDocument.encode)) }
        if !overrides.quotaModes.isEmpty { object["modes"] = names(overrides.quotaModes.mapValues(\.rawValue)) }
        if overrides.removesRateTier {
            object["rate"] = "none"
        } else if let tier = overrides.rateTier {
            object["rate"] = PlanDocument.encode(tier)
        }
        if let anchor = overrides.billingAnchor { object["billing_anchor"] = anchor.description }
        return object
    }

    /// The effective plan: per feature `{kind, limit, unit, reset, policy, mode, when_unreachable}` or `{kind, enabled}`, and `rate`.
    static func effective(_ plan: EffectivePlan) -> [String: Any] {
        var features: [String: Any] = [:]
        for (name, feature) in plan.features {
            switch feature {
            case .boolean(let enabled):
                features[name.rawValue] = ["kind": "boolean", "enabled": enabled] as [String: Any]
            case .metered(let metered):
                features[name.rawValue] = [
                    "kind": "metered", "limit": metered.limit, "unit": metered.unit, "reset": reset(metered.interval),
                    "policy": PlanDocument.encode(metered.policy), "mode": metered.quotaMode.rawValue,
                    "when_unreachable": metered.whenCollectorUnreachable.rawValue,
                ] as [String: Any]
            }
        }
        return ["plan": plan.planName, "features": features, "rate": plan.rateTier.map(PlanDocument.encode) ?? NSNull()]
    }

    static func reset(_ interval: ResetInterval) -> String {
        switch interval {
        case .minute: "minute"
        case .hour: "hour"
        case .day: "day"
        case .week: "week"
        case .month: "month"
        case .billingCycle(let anchor): "billing_cycle from \(anchor)"
        }
    }

    private static func names<V>(_ values: [FeatureName: V]) -> [String: V] {
        Dictionary(uniqueKeysWithValues: values.map { ($0.key.rawValue, $0.value) })
    }
}
