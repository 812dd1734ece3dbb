/// A price of `price` per `perUnits` units, so sub-atomic unit prices stay exact
/// (e.g. 1500 atomic units per 1000 tokens = 1.5 atomic units per token).
///
/// Rounding: the charge for the first `n` units is `ceil(n × price / perUnits)`, computed on the
/// cumulative count; the charge for a step is the difference of two cumulative charges. Steps then
/// telescope: however the units are split across requests, the total equals the charge for all of
/// them at once, rounded up once. It never drifts and never undercharges by more than zero.
public struct UnitPrice: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The price of `perUnits` units.
    public var price: Money
    /// How many units `price` buys; at least 1.
    public var perUnits: UInt64

    /// Creates a price; `perUnits` of 0 is treated as 1.
    public init(price: Money, perUnits: UInt64 = 1) {
        self.price = price
        self.perUnits = Swift.max(1, perUnits)
    }

    /// The cumulative charge for the first `units` units: `ceil(units × price / perUnits)`, or nil on overflow.
    public func cumulativeCharge(units: UInt64) -> UInt64? {
        let per = Swift.max(1, perUnits)
        let product = units.multipliedFullWidth(by: price.atomicUnits)
        // The quotient must fit in 64 bits: that holds exactly when high < divisor.
        guard product.high < per else { return nil }
        let (quotient, remainder) = per.dividingFullWidth(product)
        if remainder == 0 { return quotient }
        let (up, overflow) = quotient.addingReportingOverflow(1)
        return overflow ? nil : up
    }

    /// The charge for `units` more units after `alreadyCharged` units this period, or nil on overflow.
    public func charge(units: UInt64, after alreadyCharged: UInt64) -> Money? {
        let (total, overflow) = alreadyCharged.addingReportingOverflow(units)
        guard !overflow, let after = cumulativeCharge(units: total), let before = cumulativeCharge(units: alreadyCharged) else {
            return nil
        }
        return Money(atomicUnits: after - before, asset: price.asset)
    }

    /// `price/perUnits`.
    public var description: String { "\(price)/\(perUnits)" }
}
