import TollgateCore

/// The body of `GET /v1/usage/{key}/bill`: a bill estimate for one key and period, a line per
/// metered feature and the totals, every amount in integer atomic units of `currency`.
///
/// Built from a `UsageReport` (so the two always agree) with the arithmetic of `FeatureBill`:
/// overage charged as the cumulative ceil of `units × price / per`, never above the spend cap;
/// payments received are listed apart from the charges, not netted against them.
///
/// ```swift
/// let report = try await UsageReport.make(entry: entry, at: now, periodID: nil, reader: reader)
/// let bill = report.bill(plan: entry.effectivePlan)
/// bill.totals.overageCharge      // e.g. 4_000_000 (4 USDC with 6 decimals)
/// ```
public struct UsageBill: Codable, Sendable, Equatable {
    /// One metered feature's line.
    public struct Line: Codable, Sendable, Equatable {
        /// The feature and the period it is billed for.
        public var feature: String
        public var period: UsageReport.PeriodInfo?
        public var unit: String?
        /// `block`, `payment_required` or `overage`.
        public var policy: String?
        /// The plan's limit, credits on top of it, and their sum.
        public var limit: UInt64
        public var credits: UInt64
        public var included: UInt64
        /// Units used, and how many of them were within `included`.
        public var used: UInt64
        public var includedUsed: UInt64
        /// Used × 100 / included, rounded down, and its level (`ok`, `warning` ≥ 80, `alert` ≥ 100).
        public var percentUsed: UInt64
        public var level: UsageLevel
        /// Units billed as overage (overage policy only).
        public var overageUnits: UInt64
        /// The overage price: `unit_price` atomic units per `per_units` units (overage policy only).
        public var unitPrice: UInt64?
        public var perUnits: UInt64?
        /// The spend cap (atomic units) and whether it is reached.
        public var spendCap: UInt64?
        public var capReached: Bool?
        /// The overage charge, atomic units.
        public var charge: UInt64
        /// True when the charge did not fit in 64 bits and is saturated (absent otherwise).
        public var overflow: Bool?
        /// x402 payments settled for this feature in the period, and their amount.
        public var payments: UInt64
        public var paymentsAmount: UInt64

        /// The line of `bill` for `feature`.
        public init(feature: UsageReport.Feature, bill: FeatureBill) {
            self.feature = feature.feature
            self.period = feature.period
            self.unit = feature.unit
            self.policy = feature.policy
            self.limit = bill.limit
            self.credits = bill.credits
            self.included = bill.included
            self.used = bill.used
            self.includedUsed = min(bill.used, bill.included)
            self.percentUsed = bill.percentUsed
            self.level = bill.level
            self.overageUnits = bill.overageUnits
            self.unitPrice = bill.unitPrice?.price.atomicUnits
            self.perUnits = bill.unitPrice?.perUnits
            self.spendCap = bill.spendCap
            self.capReached = bill.spendCap == nil ? nil : bill.capReached
            self.charge = bill.charge
            self.overflow = bill.overflow ? true : nil
            self.payments = bill.payments
            self.paymentsAmount = bill.paymentsAmount
        }
    }

    /// The key billed.
    public var key: UsageReport.Key
    /// The period asked for with `?period=`, nil for the current ones (each line names its own).
    public var period: String?
    /// A line per metered feature, sorted by name.
    public var lines: [Line]
    /// Overage units and charges over the lines; payments received, apart.
    public var totals: BillTotals
    /// The asset amounts are counted in.
    public var currency: BillingCurrency
    /// When the estimate was made (RFC 3339); a current period's bill grows until the period ends.
    public var asOf: String
}

extension UsageReport {
    /// The bill estimate of this report, with the policies of `plan` (the key's effective plan).
    public func bill(plan: EffectivePlan) -> UsageBill {
        var lines: [UsageBill.Line] = []
        var totals = BillTotals()
        for feature in self.features where feature.kind == "metered" {
            guard case .metered(let metered)? = plan.features[FeatureName(feature.feature)] else { continue }
            let bill = feature.bill(policy: metered.policy)
            totals.add(bill)
            lines.append(UsageBill.Line(feature: feature, bill: bill))
        }
        return UsageBill(key: self.key, period: self.period, lines: lines, totals: totals, currency: self.currency, asOf: self.asOf)
    }
}
