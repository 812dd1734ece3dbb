import TollgateCore
import TollgateStore

/// The body of `GET /v1/usage?plan=&over=&limit=`: the keys nearest to or over their limit in
/// their current periods, fullest first, each with a summary a dashboard can draw as bars.
///
/// A key's `percent_used` is the largest of its metered features' (`FeatureBill.percentUsed`:
/// used × 100 / included, rounded down); a key is listed when that reaches `over`.
///
/// ```swift
/// let overview = try await UsageOverview.make(reader: reader, query: .init(overPercent: 80), at: clock.now())
/// for key in overview.keys { print(key.key.name, key.percentUsed, key.level) }
/// ```
public struct UsageOverview: Codable, Sendable, Equatable {
    /// What to list.
    public struct Query: Sendable, Equatable {
        /// Only keys on this plan; nil for every plan.
        public var plan: String?
        /// Only keys whose fullest feature is at least this percent used; 0 lists every key.
        public var overPercent: UInt64
        /// At most this many keys (the fullest).
        public var limit: Int

        /// A query; by default every key, at most 100.
        public init(plan: String? = nil, overPercent: UInt64 = 0, limit: Int = 100) {
            self.plan = plan
            self.overPercent = overPercent
            self.limit = limit
        }
    }

    /// One metered feature of a key, as a bar: used against included.
    public struct FeatureSummary: Codable, Sendable, Equatable {
        public var feature: String
        public var period: String
        public var unit: String
        public var policy: String
        public var used: UInt64
        public var included: UInt64
        public var remaining: UInt64
        /// Used × 100 / included, rounded down (see `FeatureBill.percentUsed`).
        public var percentUsed: UInt64
        /// `ok`, `warning` (≥ 80 %) or `alert` (≥ 100 %).
        public var level: UsageLevel
        public var overageUnits: UInt64
        /// Atomic units of the overview's currency.
        public var overageCharge: UInt64
        /// Present (true or false) only under overage with a spend cap.
        public var capReached: Bool?
    }

    /// One key: its metered features and their fullest.
    public struct KeySummary: Codable, Sendable, Equatable {
        public var key: UsageReport.Key
        /// The largest `percent_used` of its features (0 without metered features), and its level.
        public var percentUsed: UInt64
        public var level: UsageLevel
        /// The feature with that percent, if any.
        public var fullest: String?
        public var features: [FeatureSummary]
        /// Overage charges over its features, atomic units (saturating).
        public var overageCharge: UInt64
        /// Payments settled in its current periods, and their amount.
        public var payments: UInt64
        public var paymentsAmount: UInt64

        /// The summary of a usage report (any period).
        public init(report: UsageReport) {
            self.key = report.key
            self.features = report.features.compactMap { feature -> FeatureSummary? in
                guard feature.kind == "metered", let used = feature.used, let included = feature.included else { return nil }
                let percent = feature.percentUsed ?? 0
                return FeatureSummary(
                    feature: feature.feature, period: feature.period?.id ?? "", unit: feature.unit ?? "", policy: feature.policy ?? "",
                    used: used, included: included, remaining: feature.remaining ?? 0, percentUsed: percent,
                    level: UsageLevel(percentUsed: percent), overageUnits: feature.overageUnits ?? 0,
                    overageCharge: feature.overageCharge ?? 0, capReached: feature.capReached
                )
            }
            let fullest = self.features.max { ($0.percentUsed, $1.feature) < ($1.percentUsed, $0.feature) }
            self.percentUsed = fullest?.percentUsed ?? 0
            self.level = UsageLevel(percentUsed: self.percentUsed)
            self.fullest = fullest?.feature
            self.overageCharge = self.features.reduce(0) { UsageReport.saturatingSum($0, $1.overageCharge) }
            self.payments = report.payments.count
            self.paymentsAmount = report.payments.amount
        }
    }

    /// The plan filter, or nil.
    public var plan: String?
    /// The percent threshold.
    public var over: UInt64
    /// The most keys listed.
    public var limit: Int
    /// Keys on the plan (or all) that were looked at.
    public var keysScanned: Int
    /// Keys at or over the threshold; `keys` holds the first `limit` of them.
    public var matched: Int
    /// Fullest first (percent descending, then name, then id).
    public var keys: [KeySummary]
    /// The asset amounts are counted in.
    public var currency: BillingCurrency
    /// When the overview was made (RFC 3339).
    public var asOf: String

    /// Lists the keys of the registry that `query` selects, each with its current usage.
    ///
    /// Throws `UsageQueryError.unknownPlan` when `query.plan` names no stored plan. A key whose
    /// record disappears while the list is read is skipped. One report per key: for a large
    /// registry this is a scan, meant for operators and dashboards, not for every request.
    public static func make(
        reader: any UsageReading, query: Query, at now: Timestamp, currency: BillingCurrency = BillingCurrency()
    ) async throws -> UsageOverview {
        if let plan = query.plan, !(try await reader.planNames()).contains(plan) {
            throw UsageQueryError.unknownPlan(plan)
        }
        let keys = try await reader.keys().filter { query.plan == nil || $0.key.plan == query.plan }
        var selected: [KeySummary] = []
        for stored in keys {
            guard let entry = try await reader.entry(keyID: stored.key.id) else { continue }
            let report = try await UsageReport.make(entry: entry, at: now, periodID: nil, reader: reader, currency: currency)
            let summary = KeySummary(report: report)
            if summary.percentUsed >= query.overPercent { selected.append(summary) }
        }
        selected.sort { ($1.percentUsed, $0.key.name, $0.key.id) < ($0.percentUsed, $1.key.name, $1.key.id) }
        return UsageOverview(
            plan: query.plan, over: query.overPercent, limit: query.limit, keysScanned: keys.count, matched: selected.count,
            keys: Array(selected.prefix(max(0, query.limit))), currency: currency, asOf: now.description
        )
    }
}
