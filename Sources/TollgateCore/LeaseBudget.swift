extension UnitPrice {
    /// The most units whose cumulative charge stays within `cap`: the largest `n` with
    /// `ceil(n × price / perUnits) ≤ cap`, which is `floor(cap × perUnits / price)`.
    /// Nil when the price is zero (any number of units fits), saturating at `UInt64.max`.
    public func maxUnits(within cap: Money) -> UInt64? {
        guard price.atomicUnits > 0 else { return nil }
        let product = cap.atomicUnits.multipliedFullWidth(by: Swift.max(1, perUnits))
        guard product.high < price.atomicUnits else { return .max }
        return price.atomicUnits.dividingFullWidth(product).quotient
    }
}

extension EffectiveMeteredFeature {
    /// The units the whole fleet may admit for this feature in one period before credits, or nil
    /// when admission is unbounded (overage without a spend cap): the pool leases are cut from.
    ///
    /// Under `block` and `payment_required` it is the limit. Under `overage` with a cap it is the
    /// limit plus the overage units the cap pays for (`UnitPrice.maxUnits(within:)`), so the last
    /// overage unit leased is exactly the last one the cap allows; past it the fallback applies.
    public var leaseBudget: UInt64? {
        switch policy {
        case .block, .paymentRequired:
            return limit
        case .overage(let price, let cap, _):
            guard let cap, let extra = price.maxUnits(within: cap) else { return nil }
            let (sum, overflow) = limit.addingReportingOverflow(extra)
            return overflow ? .max : sum
        }
    }
}
