/// One metered feature's bill for one period, in integer atomic units of the asset: what was
/// included, what was used, what went over, and what that costs.
///
/// Pure arithmetic over the counters enforcement keeps (used units, credited units, payments), so
/// the usage API, the bill and a dashboard all show the numbers the sidecars decided by:
///
/// - `included` is `limit + credits` (credits are admin grants and paid packs), saturating.
/// - Only the `overage` policy bills: its `overageUnits` are the units used beyond `included`, and
///   the charge is `ceil(overageUnits × price / per)` taken once on the period's cumulative count
///   (`UnitPrice.cumulativeCharge`), which is what the per-call charges telescope to. Units used
///   beyond `included` under `block` or `payment_required` (an optimistic overshoot, or calls paid
///   one by one) are not overage: they are not billed here.
/// - A spend cap is a promise: the charge never exceeds it. `capReached` says the next overage
///   unit would pass it (what makes a sidecar apply the fallback).
/// - A charge that does not fit in 64 bits is never wrapped or rounded: the bill saturates at the
///   cap (or at `UInt64.max` without one) and sets `overflow`.
///
/// ```swift
/// let bill = FeatureBill(limit: 1000, credits: 0, used: 5000,
///                        policy: .overage(price: UnitPrice(price: Money(atomicUnits: 1000)), spendCap: nil, fallback: .block))
/// bill.overageUnits   // 4000
/// bill.charge         // 4_000_000
/// ```
public struct FeatureBill: Sendable, Hashable, Codable {
    /// The plan's limit for the period.
    public var limit: UInt64
    /// Units credited on top of the limit this period.
    public var credits: UInt64
    /// `limit + credits` (saturating: a sum past `UInt64.max` is unlimited in practice).
    public var included: UInt64
    /// Units used this period.
    public var used: UInt64
    /// Included units not used: `included − used`, never below zero.
    public var remaining: UInt64
    /// Units used beyond `included` that the overage policy bills (0 under other policies).
    public var overageUnits: UInt64
    /// The overage charge, atomic units of the asset; never above the spend cap.
    public var charge: UInt64
    /// The overage unit price (nil unless the policy is `overage`).
    public var unitPrice: UnitPrice?
    /// The spend cap, atomic units (nil when none).
    public var spendCap: UInt64?
    /// Whether one more overage unit would pass the spend cap (the fallback applies from here on).
    public var capReached: Bool
    /// Whether the uncapped charge did not fit in 64 bits (`charge` is then saturated).
    public var overflow: Bool
    /// x402 payments settled for this feature and period.
    public var payments: UInt64
    /// Their amount, atomic units of the asset (recorded, not computed here).
    public var paymentsAmount: UInt64

    /// The bill for `used` units against `limit + credits` under `policy`, with the period's payments.
    public init(limit: UInt64, credits: UInt64, used: UInt64, policy: OverQuotaPolicy, payments: UInt64 = 0, paymentsAmount: UInt64 = 0) {
        self.limit = limit
        self.credits = credits
        let (sum, overflow) = limit.addingReportingOverflow(credits)
        self.included = overflow ? .max : sum
        self.used = used
        self.remaining = self.included > used ? self.included - used : 0
        self.payments = payments
        self.paymentsAmount = paymentsAmount
        self.overageUnits = 0
        self.charge = 0
        self.capReached = false
        self.overflow = false
        guard case .overage(let price, let cap, _) = policy else { return }
        self.unitPrice = price
        self.spendCap = cap?.atomicUnits
        self.overageUnits = used > self.included ? used - self.included : 0
        let uncapped = price.cumulativeCharge(units: self.overageUnits)
        self.overflow = uncapped == nil
        if let cap = cap?.atomicUnits {
            self.charge = min(uncapped ?? .max, cap)
            // The sidecar refuses a unit whose charge would take the total past the cap.
            let next = self.overageUnits == .max ? nil : price.cumulativeCharge(units: self.overageUnits + 1)
            self.capReached = next.map { $0 > cap } ?? true
        } else {
            self.charge = uncapped ?? .max
        }
    }

    /// Percent of `included` used, rounded down: `used × 100 / included`, at most `maxPercent`.
    /// Nothing included counts as 100 while unused and `maxPercent` once used.
    public var percentUsed: UInt64 {
        guard self.included > 0 else { return self.used == 0 ? 100 : Self.maxPercent }
        let product = self.used.multipliedFullWidth(by: 100)
        guard product.high < self.included else { return Self.maxPercent }
        let (quotient, _) = self.included.dividingFullWidth(product)
        return min(quotient, Self.maxPercent)
    }

    /// How full the quota is: `ok` below 80 %, `warning` from 80 %, `alert` from 100 %.
    public var level: UsageLevel { UsageLevel(percentUsed: self.percentUsed) }

    /// The largest percent reported (10,000×): keeps sorting total without an unbounded number.
    public static let maxPercent: UInt64 = 1_000_000
}

/// How full a quota is, for bars and alerts: `ok` below 80 %, `warning` from 80 %, `alert` from 100 %.
public enum UsageLevel: String, Sendable, Hashable, Codable, Comparable {
    /// Below 80 % of the included units.
    case ok
    /// 80 % or more.
    case warning
    /// 100 % or more: the quota is spent (or passed, under overage).
    case alert

    /// The level of `percentUsed`.
    public init(percentUsed: UInt64) {
        self = percentUsed >= 100 ? .alert : percentUsed >= 80 ? .warning : .ok
    }

    /// `ok < warning < alert`.
    public static func < (lhs: UsageLevel, rhs: UsageLevel) -> Bool {
        let order: [UsageLevel] = [.ok, .warning, .alert]
        return order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
    }
}
