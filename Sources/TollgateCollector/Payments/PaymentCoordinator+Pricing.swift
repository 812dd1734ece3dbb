import TollgateCore
import TollgateX402

/// The server's side of a payment: what it costs, what it buys, and whether the client's payment
/// matches the server's own requirements.
extension PaymentCoordinator {
    /// What a payment bought, credited: the feature (the metered feature, or the tier's name for a
    /// refill), the units added to the period's quota, and the ledger's `grant` text. The paid call
    /// itself is served on top of what it bought, so one more unit is credited for it: a single
    /// call credits 1, a pack of N credits N + 1 (the next N calls need no payment), and `used`
    /// never exceeds `included`.
    static func credit(_ buys: PaymentGrant, feature: String, tierName: String?) -> (String, UInt64, String) {
        switch buys {
        case .singleCall: (feature, 1, "call")
        case .units(let units): (feature, units == .max ? .max : units + 1, "units:\(units)")
        case .bucketRefill(let tokens): (feature, 0, "refill:\(tokens)")
        }
    }

    /// The price the plan asks for `feature`: its `payment_required` policy, an overage fallback
    /// that asks for payment, or (for the tier's name) the tier's paid refill.
    static func price(for plan: EffectivePlan, feature: FeatureName) -> (Money, PaymentGrant)? {
        if let tier = plan.rateTier, tier.name == feature.rawValue, let refill = tier.paidRefill {
            return (refill.price, .bucketRefill(tokens: refill.tokens))
        }
        guard case .metered(let metered)? = plan.features[feature] else { return nil }
        switch metered.policy {
        case .paymentRequired(let price, let buys): return (price, buys)
        case .overage(_, _, .paymentRequired(let price, let buys)): return (price, buys)
        case .block, .overage: return nil
        }
    }

    static func periodID(_ plan: EffectivePlan, feature: FeatureName, at now: Timestamp) -> String {
        if case .metered(let metered)? = plan.features[feature] { return metered.period(containing: now).id }
        // A refill credits the bucket, not a period: file it under the day.
        return ResetInterval.day.period(containing: now).id
    }

    /// A field of the client's payment that differs from the server's requirements, as an x402 reason.
    static func mismatch(_ payment: DecodedPayment, _ requirements: ServerRequirements, settings: X402Settings) -> String? {
        let mine = requirements.v2
        if let accepted = payment.accepted {
            if accepted.scheme != mine.scheme { return "unsupported_scheme" }
            if accepted.network != mine.network { return "invalid_network" }
            if accepted.amount != mine.amount || accepted.asset != mine.asset || accepted.payTo != mine.payTo
                || accepted.maxTimeoutSeconds != mine.maxTimeoutSeconds {
                return "invalid_payment_requirements"
            }
        } else if payment.network != mine.network {
            return "invalid_network"
        }
        if payment.authorization.to != mine.payTo { return "invalid_exact_evm_payload_recipient_mismatch" }
        if payment.authorization.value != mine.amount { return "invalid_exact_evm_payload_authorization_value_mismatch" }
        return nil
    }
}
