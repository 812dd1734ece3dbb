/// The pure over-quota decision: a feature, its usage this period, a request, the time → a decision.
///
/// Requests are all-or-nothing except under `overage`, where the part that still fits is included and
/// the rest is overage. A request for zero units is always served.
public enum QuotaEvaluator {
    /// Decides a request against any feature: a switched-off boolean is forbidden, an enabled one served.
    public static func decide(_ feature: EffectiveFeature, usage: FeatureUsage, requested: UInt64, at now: Timestamp) -> QuotaDecision {
        switch feature {
        case .boolean(true):
            return QuotaDecision(allowed: true, remaining: .max, outcome: .serve)
        case .boolean(false):
            return QuotaDecision(allowed: false, remaining: 0, outcome: .forbidden)
        case .metered(let metered):
            return decide(metered, usage: usage, requested: requested, at: now)
        }
    }

    /// Decides a request of `requested` units against a metered feature at `now`.
    public static func decide(_ feature: EffectiveMeteredFeature, usage: FeatureUsage, requested: UInt64, at now: Timestamp) -> QuotaDecision {
        let period = feature.period(containing: now)
        let untilReset = now.secondsRoundedUp(until: period.end)
        let remaining = usage.remaining(limit: feature.limit)
        func headers(remaining: UInt64) -> RateLimitHeaders {
            RateLimitHeaders(
                policies: [.init(name: feature.name.rawValue, quota: usage.included(limit: feature.limit), windowSeconds: period.lengthInSeconds)],
                limits: [.init(name: feature.name.rawValue, remaining: remaining, resetSeconds: untilReset)]
            )
        }
        if requested <= remaining {
            let left = remaining - requested
            return QuotaDecision(allowed: true, remaining: left, outcome: .serve, headers: headers(remaining: left))
        }
        func refuse(_ policy: OverQuotaPolicy, capReached: Bool) -> QuotaDecision {
            switch policy {
            case .paymentRequired(let price, let buys):
                return QuotaDecision(allowed: false, remaining: remaining, policyApplied: policy, spendCapReached: capReached,
                                     outcome: .paymentRequired(price: price, buys: buys), headers: headers(remaining: remaining))
            case .block, .overage:
                return QuotaDecision(allowed: false, remaining: remaining, policyApplied: .block, spendCapReached: capReached,
                                     outcome: .block(retryAfterSeconds: untilReset), retryAfterSeconds: untilReset,
                                     headers: headers(remaining: remaining))
            }
        }
        switch feature.policy {
        case .block, .paymentRequired:
            return refuse(feature.policy, capReached: false)
        case .overage(let price, let spendCap, let fallback):
            let overUnits = requested - remaining
            // An overflowing charge cannot be billed, so it is refused like a reached cap.
            guard let charge = price.charge(units: overUnits, after: usage.overageUnits) else {
                return refuse(fallback.policy, capReached: true)
            }
            if let cap = spendCap {
                let (total, overflow) = usage.overageCharged.addingReportingOverflow(charge.atomicUnits)
                if overflow || total > cap.atomicUnits { return refuse(fallback.policy, capReached: true) }
            }
            return QuotaDecision(allowed: true, remaining: 0, policyApplied: feature.policy,
                                 outcome: .serveOverage(units: overUnits, charge: charge), headers: headers(remaining: 0))
        }
    }
}
