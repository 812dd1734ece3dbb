import TollgateCore

/// The counters of one key, feature and period: what a batch adds and what Redis holds.
///
/// Sums add; `latencyMaxMicroseconds` keeps the largest value seen.
/// ```swift
/// var total = UsageCounters()
/// total.add(UsageCounters(calls: 2, units: 2, statuses: StatusCounts(success: 2)))
/// ```
public struct UsageCounters: Sendable, Hashable, Codable {
    /// Calls (or reports) counted.
    public var calls: UInt64
    /// Units of the feature's own meter.
    public var units: UInt64
    /// Calls per HTTP status class.
    public var statuses: StatusCounts
    /// Request body bytes.
    public var requestBytes: UInt64
    /// Response body bytes.
    public var responseBytes: UInt64
    /// Latency summed, microseconds.
    public var latencySumMicroseconds: UInt64
    /// The largest single latency, microseconds.
    public var latencyMaxMicroseconds: UInt64
    /// Units served beyond the included quota under the overage policy.
    public var overageUnits: UInt64
    /// The charge for those units, in atomic units of the asset.
    public var overageChargeAtomic: UInt64
    /// Extra meters the upstream reported (e.g. `tokens`), by name.
    public var extraUnits: [String: UInt64]
    /// Units credited this period (read back only: credits are written by the admin API and
    /// payments, never by usage batches).
    public var credits: UInt64 = 0
    /// x402 payments settled for this key, feature and period, and their sum in atomic units of the
    /// asset (read back only: `PaymentStore.record` writes them with the ledger entry).
    public var payments: UInt64 = 0
    /// The amount of those payments, atomic units of the asset.
    public var paymentsAtomic: UInt64 = 0

    /// Counters with the given values, zero by default.
    public init(
        calls: UInt64 = 0, units: UInt64 = 0, statuses: StatusCounts = StatusCounts(), requestBytes: UInt64 = 0,
        responseBytes: UInt64 = 0, latencySumMicroseconds: UInt64 = 0, latencyMaxMicroseconds: UInt64 = 0,
        overageUnits: UInt64 = 0, overageChargeAtomic: UInt64 = 0, extraUnits: [String: UInt64] = [:]
    ) {
        self.calls = calls
        self.units = units
        self.statuses = statuses
        self.requestBytes = requestBytes
        self.responseBytes = responseBytes
        self.latencySumMicroseconds = latencySumMicroseconds
        self.latencyMaxMicroseconds = latencyMaxMicroseconds
        self.overageUnits = overageUnits
        self.overageChargeAtomic = overageChargeAtomic
        self.extraUnits = extraUnits
    }

    /// Adds `other` (sums add, the latency maximum is the larger one), as the store does in Redis.
    public mutating func add(_ other: UsageCounters) {
        self.calls &+= other.calls
        self.units &+= other.units
        for statusClass in StatusClass.allCases {
            self.statuses[statusClass] &+= other.statuses[statusClass]
        }
        self.requestBytes &+= other.requestBytes
        self.responseBytes &+= other.responseBytes
        self.latencySumMicroseconds &+= other.latencySumMicroseconds
        self.latencyMaxMicroseconds = max(self.latencyMaxMicroseconds, other.latencyMaxMicroseconds)
        self.overageUnits &+= other.overageUnits
        self.overageChargeAtomic &+= other.overageChargeAtomic
        for (name, value) in other.extraUnits {
            self.extraUnits[name, default: 0] &+= value
        }
    }

    /// Whether every counter is zero.
    public var isZero: Bool { self == UsageCounters() }
}

extension UsageCounters {
    /// The summed counters as hash fields and increments, in a fixed order; zero sums are left out.
    var increments: [(field: String, value: UInt64)] {
        typealias F = RedisKeys.Field
        var fields: [(String, UInt64)] = [(F.calls, self.calls), (F.units, self.units)]
        for (index, statusClass) in StatusClass.allCases.enumerated() {
            fields.append((F.status[index], self.statuses[statusClass]))
        }
        fields += [
            (F.requestBytes, self.requestBytes), (F.responseBytes, self.responseBytes),
            (F.latencySum, self.latencySumMicroseconds), (F.overageUnits, self.overageUnits),
            (F.overageCharge, self.overageChargeAtomic),
        ]
        for name in self.extraUnits.keys.sorted() {
            fields.append((F.extraPrefix + name, self.extraUnits[name]!))
        }
        return fields.filter { $0.1 != 0 }
    }

    /// Counters read back from a counter hash (`HGETALL` pairs); unknown fields are ignored.
    init(hashFields pairs: [(String, UInt64)]) throws(StoreError) {
        typealias F = RedisKeys.Field
        self.init()
        for (field, value) in pairs {
            switch field {
            case F.calls: self.calls = value
            case F.units: self.units = value
            case F.requestBytes: self.requestBytes = value
            case F.responseBytes: self.responseBytes = value
            case F.latencySum: self.latencySumMicroseconds = value
            case F.latencyMax: self.latencyMaxMicroseconds = value
            case F.overageUnits: self.overageUnits = value
            case F.overageCharge: self.overageChargeAtomic = value
            case F.credit: self.credits = value
            case F.paymentCount: self.payments = value
            case F.paymentAmount: self.paymentsAtomic = value
            default:
                if let index = F.status.firstIndex(of: field) {
                    self.statuses[StatusClass.allCases[index]] = value
                } else if field.hasPrefix(F.extraPrefix) {
                    self.extraUnits[String(field.dropFirst(F.extraPrefix.count))] = value
                }
            }
        }
    }
}
