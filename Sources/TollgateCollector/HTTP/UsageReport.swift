import TollgateCore
import TollgateStore

/// The body of `GET /v1/usage/{key}`: one key's usage in a period, per feature, read from the
/// counters enforcement keeps, with the billing figures of `FeatureBill` (included, overage and
/// its charge, spend cap, payments, percent used). `bill(plan:)` turns it into a `UsageBill`, and
/// `UsageOverview.KeySummary(report:)` into a dashboard row, so the three never disagree.
///
/// ```swift
/// let report = try await UsageReport.make(entry: entry, at: clock.now(), periodID: nil, reader: reader)
/// ```
public struct UsageReport: Codable, Sendable, Equatable {
    /// The key, by id and name (never the API key itself).
    public struct Key: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        public var plan: String
        public var revoked: Bool
    }

    /// A period's id and bounds (RFC 3339, end exclusive).
    public struct PeriodInfo: Codable, Sendable, Equatable {
        public var id: String
        public var start: String
        public var end: String
    }

    /// One feature's usage.
    public struct Feature: Codable, Sendable, Equatable {
        public var feature: String
        public var kind: String
        public var enabled: Bool?
        public var period: PeriodInfo?
        public var unit: String?
        public var used: UInt64?
        public var limit: UInt64?
        public var remaining: UInt64?
        public var policy: String?
        public var mode: String?
        public var calls: UInt64?
        public var status: [String: UInt64]?
        public var requestBytes: UInt64?
        public var responseBytes: UInt64?
        public var extraUnits: [String: UInt64]?
        /// Units credited this period (top-ups); `included` is `limit + credits`.
        public var credits: UInt64?
        public var included: UInt64?
        /// Units served beyond the included quota, and their charge in atomic units of the asset
        /// (overage policy; the charge is the cumulative ceil of units × price, never rounded twice).
        public var overageUnits: UInt64?
        public var overageCharge: UInt64?
        /// The overage price (atomic units per `overage_per_units` units) and spend cap, when set.
        public var overagePrice: UInt64?
        public var overagePerUnits: UInt64?
        public var spendCap: UInt64?
        /// Whether one more overage unit would pass the spend cap (overage with a cap only).
        public var capReached: Bool?
        /// Whether the overage charge did not fit in 64 bits (it is then saturated); never silent.
        public var overflow: Bool?
        /// x402 payments settled for this feature in the period, and their amount (atomic units).
        public var payments: UInt64?
        public var paymentsAmount: UInt64?
        /// Under `payment_required`: the price of one payment (atomic units) and what it buys
        /// (`call`, `units:<n>`, `refill:<tokens>`).
        public var paymentPrice: UInt64?
        public var paymentBuys: String?
        /// Percent of `included` used, rounded down (`FeatureBill.percentUsed`), and its level:
        /// `ok` below 80, `warning` from 80, `alert` from 100.
        public var percentUsed: UInt64?
        public var level: String?
    }

    /// x402 payments settled in the report's periods, over every feature.
    public struct Payments: Codable, Sendable, Equatable {
        /// How many.
        public var count: UInt64
        /// Their sum, atomic units of `currency`.
        public var amount: UInt64

        /// A total of `count` payments for `amount` atomic units.
        public init(count: UInt64, amount: UInt64) {
            self.count = count
            self.amount = amount
        }
    }

    /// The key's token bucket, when its plan has one.
    public struct Tier: Codable, Sendable, Equatable {
        public var name: String
        public var capacity: UInt64
        public var refillTokens: UInt64
        public var refillPerSeconds: UInt64
    }

    /// The key.
    public var key: Key
    /// The period asked for with `?period=`, nil for the current ones.
    public var period: String?
    /// Per feature, sorted by name (booleans only for the current period).
    public var features: [Feature]
    /// Payments over every feature.
    public var payments: Payments
    /// The asset amounts are counted in.
    public var currency: BillingCurrency
    /// The key's token bucket.
    public var tier: Tier?
    /// When the report was made (RFC 3339).
    public var asOf: String

    /// Builds the report for `entry` in the periods containing `at`, or the period named `periodID`.
    ///
    /// A `periodID` is matched against each metered feature's own interval; features it does not
    /// fit (a `d...` id for a monthly feature) are left out. Throws when it fits none.
    public static func make(
        entry: RegistryEntry,
        at now: Timestamp,
        periodID: String?,
        reader: any UsageCounterReading,
        currency: BillingCurrency = BillingCurrency()
    ) async throws -> UsageReport {
        var features: [Feature] = []
        for name in entry.effectivePlan.features.keys.sorted() {
            switch entry.effectivePlan.features[name]! {
            case .boolean(let enabled):
                if periodID == nil { features.append(Feature(feature: name.rawValue, kind: "boolean", enabled: enabled)) }
            case .metered(let metered):
                let period: Period
                if let periodID {
                    guard let named = try? metered.interval.period(id: periodID) else { continue }
                    period = named
                } else {
                    period = metered.interval.period(containing: now)
                }
                let counters = try await reader.counters(keyID: entry.key.id, feature: name.rawValue, periodID: period.id)
                let bill = FeatureBill(limit: metered.limit, credits: counters.credits, used: counters.units, policy: metered.policy,
                                       payments: counters.payments, paymentsAmount: counters.paymentsAtomic)
                var feature = Feature(
                    feature: name.rawValue, kind: "metered",
                    period: PeriodInfo(id: period.id, start: period.start.description, end: period.end.description),
                    unit: metered.unit, used: counters.units, limit: metered.limit, remaining: bill.remaining,
                    policy: metered.policy.name, mode: metered.quotaMode.rawValue,
                    calls: counters.calls,
                    status: Dictionary(uniqueKeysWithValues: StatusClass.allCases.map { ($0.rawValue, counters.statuses[$0]) }),
                    requestBytes: counters.requestBytes, responseBytes: counters.responseBytes,
                    extraUnits: counters.extraUnits
                )
                feature.apply(bill, policy: metered.policy)
                features.append(feature)
            }
        }
        if let periodID, !features.contains(where: { $0.kind == "metered" }) {
            throw UsageQueryError.badPeriod(periodID)
        }
        let tier = entry.effectivePlan.rateTier.map {
            Tier(name: $0.name, capacity: $0.capacity, refillTokens: $0.refill.tokens, refillPerSeconds: $0.refill.perSeconds)
        }
        var payments = Payments(count: 0, amount: 0)
        for feature in features {
            payments.count = Self.saturatingSum(payments.count, feature.payments ?? 0)
            payments.amount = Self.saturatingSum(payments.amount, feature.paymentsAmount ?? 0)
        }
        return UsageReport(
            key: Key(id: entry.key.id, name: entry.key.name, plan: entry.key.plan, revoked: entry.revoked),
            period: periodID, features: features, payments: payments, currency: currency, tier: tier, asOf: now.description
        )
    }

    static func saturatingSum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }
}

extension UsageReport.Feature {
    /// Fills the billing fields of a metered feature from its bill.
    mutating func apply(_ bill: FeatureBill, policy: OverQuotaPolicy) {
        self.credits = bill.credits
        self.included = bill.included
        self.overageUnits = bill.overageUnits
        self.overageCharge = bill.charge
        self.overagePrice = bill.unitPrice?.price.atomicUnits
        self.overagePerUnits = bill.unitPrice?.perUnits
        self.spendCap = bill.spendCap
        if bill.spendCap != nil { self.capReached = bill.capReached }
        if bill.overflow { self.overflow = true }
        self.payments = bill.payments
        self.paymentsAmount = bill.paymentsAmount
        self.percentUsed = bill.percentUsed
        self.level = bill.level.rawValue
        if case .paymentRequired(let price, let buys) = policy {
            self.paymentPrice = price.atomicUnits
            self.paymentBuys = switch buys {
            case .singleCall: "call"
            case .units(let units): "units:\(units)"
            case .bucketRefill(let tokens): "refill:\(tokens)"
            }
        }
    }

    /// The feature's bill again, from the fields the report carries and the key's policy.
    func bill(policy: OverQuotaPolicy) -> FeatureBill {
        FeatureBill(limit: self.limit ?? 0, credits: self.credits ?? 0, used: self.used ?? 0, policy: policy,
                    payments: self.payments ?? 0, paymentsAmount: self.paymentsAmount ?? 0)
    }
}
