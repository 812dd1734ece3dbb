import TollgateCore
import TollgateStore

/// What a collector needs to answer usage queries; implemented over Redis by `RedisUsageReader`.
public protocol UsageReading: Sendable {
    /// The registry entry of a key, or nil when the fleet does not know it.
    func entry(keyID: String) async throws -> RegistryEntry?
    /// The counters of one key, feature and period (zero when nothing was counted).
    func counters(keyID: String, feature: String, periodID: String) async throws -> UsageCounters
}

/// The body of `GET /v1/usage/{key}`: one key's usage in a period, per feature.
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
    }

    /// The key's token bucket, when its plan has one.
    public struct Tier: Codable, Sendable, Equatable {
        public var name: String
        public var capacity: UInt64
        public var refillTokens: UInt64
        public var refillPerSeconds: UInt64
    }

    public var key: Key
    public var features: [Feature]
    public var tier: Tier?
    public var asOf: String

    /// Builds the report for `entry` in the periods containing `at`, or the period named `periodID`.
    ///
    /// A `periodID` is matched against each metered feature's own interval; features it does not
    /// fit (a `d...` id for a monthly feature) are left out. Throws when it fits none.
    public static func make(
        entry: RegistryEntry,
        at now: Timestamp,
        periodID: String?,
        reader: any UsageReading
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
                let (sum, overflow) = metered.limit.addingReportingOverflow(counters.credits)
                let included = overflow ? UInt64.max : sum
                let overageUnits = counters.units > included ? counters.units - included : 0
                var feature = Feature(
                    feature: name.rawValue, kind: "metered",
                    period: PeriodInfo(id: period.id, start: period.start.description, end: period.end.description),
                    unit: metered.unit, used: counters.units, limit: metered.limit,
                    remaining: included > counters.units ? included - counters.units : 0,
                    policy: metered.policy.name, mode: metered.quotaMode.rawValue,
                    calls: counters.calls,
                    status: Dictionary(uniqueKeysWithValues: StatusClass.allCases.map { ($0.rawValue, counters.statuses[$0]) }),
                    requestBytes: counters.requestBytes, responseBytes: counters.responseBytes,
                    extraUnits: counters.extraUnits
                )
                feature.credits = counters.credits
                feature.included = included
                if case .overage(let price, let cap, _) = metered.policy {
                    feature.overageUnits = overageUnits
                    feature.overageCharge = price.cumulativeCharge(units: overageUnits)
                    feature.overagePrice = price.price.atomicUnits
                    feature.overagePerUnits = price.perUnits
                    feature.spendCap = cap?.atomicUnits
                } else {
                    feature.overageUnits = 0
                    feature.overageCharge = 0
                }
                features.append(feature)
            }
        }
        if let periodID, !features.contains(where: { $0.kind == "metered" }) {
            throw UsageQueryError.badPeriod(periodID)
        }
        let tier = entry.effectivePlan.rateTier.map {
            Tier(name: $0.name, capacity: $0.capacity, refillTokens: $0.refill.tokens, refillPerSeconds: $0.refill.perSeconds)
        }
        return UsageReport(
            key: Key(id: entry.key.id, name: entry.key.name, plan: entry.key.plan, revoked: entry.revoked),
            features: features, tier: tier, asOf: now.description
        )
    }
}

/// Why a usage query was refused.
public enum UsageQueryError: Error, Sendable, Equatable {
    /// The period id fits none of the key's metered features.
    case badPeriod(String)
}
