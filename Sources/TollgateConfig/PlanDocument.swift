import Foundation
import TollgateCore
import Yams

/// A plan as a JSON document in the config file's shape, for the admin API.
///
/// `decode` reads exactly what one entry under `plans:` holds (JSON is accepted as the YAML flow
/// form), with the config loader's validation and errors naming the key path; `encode` writes a
/// plan back in that shape, prices as `*_atomic` integers so nothing is rounded on the way.
///
/// ```swift
/// let plan = try PlanDocument.decode(name: "pro", json: Array(#"{"features":{"api_call":{"limit":1000,"reset":"day"}}}"#.utf8))
/// let object = PlanDocument.encode(plan)   // ["features": ["api_call": ["limit": 1000, "reset": "day", ...]]]
/// ```
public enum PlanDocument {
    /// Parses a plan named `name` from JSON in the config's shape; `decimals` reads decimal prices.
    public static func decode(name: String, json: [UInt8], decimals: Int = 6) throws(ConfigError) -> Plan {
        guard name.isIdentifier else {
            throw ConfigError(.invalidValue, path: "name", "plan names use letters, digits, - and _ (at most 64)")
        }
        guard (try? JSONSerialization.jsonObject(with: Data(json))) is [String: Any] else {
            throw ConfigError(.syntax, path: "", "expected a JSON object")
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: String(decoding: json, as: UTF8.self)) else {
                throw ConfigError(.syntax, path: "", "the document is empty")
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(.syntax, path: "", "not a plan document: \(error)")
        }
        return try PlanParser(decimals: decimals).plan(named: name, ConfigNode(node: root, path: ""))
    }

    /// Whether any feature's policy or the rate tier asks for an x402 payment.
    public static func asksForPayment(_ plan: Plan) -> Bool {
        let policies = plan.features.values.compactMap { feature -> OverQuotaPolicy? in
            if case .metered(let metered) = feature { metered.policy } else { nil }
        }
        return plan.rateTier?.paidRefill != nil || policies.contains { policy in
            switch policy {
            case .block: false
            case .paymentRequired: true
            case .overage(_, _, let fallback): fallback != .block
            }
        }
    }

    /// The plan as a JSON object in the config's shape (for `JSONSerialization`).
    public static func encode(_ plan: Plan) -> [String: Any] {
        var features: [String: Any] = [:]
        for (name, feature) in plan.features {
            switch feature {
            case .boolean(let enabled):
                features[name.rawValue] = ["enabled": enabled]
            case .metered(let metered):
                features[name.rawValue] = [
                    "limit": metered.limit, "unit": metered.unit, "reset": metered.reset.rawValue,
                    "policy": encode(metered.policy), "mode": metered.quotaMode.rawValue,
                    "when_unreachable": metered.whenCollectorUnreachable.rawValue,
                ] as [String: Any]
            }
        }
        var object: [String: Any] = ["features": features]
        if let tier = plan.rateTier { object["rate"] = encode(tier) }
        return object
    }

    /// A policy in the config's shape: `block`, `{payment_required: ...}` or `{overage: ...}`.
    public static func encode(_ policy: OverQuotaPolicy) -> Any {
        switch policy {
        case .block:
            return "block"
        case .paymentRequired(let price, let buys):
            return ["payment_required": terms(price, buys)]
        case .overage(let price, let cap, let fallback):
            var overage: [String: Any] = ["price_atomic": price.price.atomicUnits, "per": price.perUnits]
            if let cap { overage["spend_cap_atomic"] = cap.atomicUnits }
            switch fallback {
            case .block: overage["fallback"] = "block"
            case .paymentRequired(let price, let buys): overage["fallback"] = ["payment_required": terms(price, buys)]
            }
            return ["overage": overage]
        }
    }

    /// Payment terms in the config's shape: `{price_atomic, buys}`.
    public static func terms(_ price: Money, _ buys: PaymentGrant) -> [String: Any] {
        let grant: Any
        switch buys {
        case .singleCall: grant = "call"
        case .units(let n): grant = ["units": n]
        case .bucketRefill(let n): grant = ["refill": n]
        }
        return ["price_atomic": price.atomicUnits, "buys": grant]
    }

    /// A rate tier in the config's shape.
    public static func encode(_ tier: RateTier) -> [String: Any] {
        var object: [String: Any] = [
            "name": tier.name, "capacity": tier.capacity, "refill": tier.refill.tokens, "per_seconds": tier.refill.perSeconds,
        ]
        if let paid = tier.paidRefill {
            object["paid_refill"] = ["price_atomic": paid.price.atomicUnits, "tokens": paid.tokens]
        }
        return object
    }
}
