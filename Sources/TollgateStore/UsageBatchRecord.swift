/// One usage batch as the store takes it: the wire's `UsageBatch` without depending on the wire module.
///
/// `(sidecarID, bootEpoch, sequence)` names the batch; the store applies it once per API key.
/// ```swift
/// let batch = UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 7, sequence: 1, aggregates: [
///     UsageAggregateRecord(keyID: keyID, feature: "api_call", periodID: "d20261123",
///                          counters: UsageCounters(calls: 3, units: 3)),
/// ])
/// ```
public struct UsageBatchRecord: Sendable, Hashable {
    /// The sending sidecar's stable id.
    public var sidecarID: String
    /// Changes on every sidecar process start.
    public var bootEpoch: UInt64
    /// Increasing within one boot epoch.
    public var sequence: UInt64
    /// The sums per key, feature and period.
    public var aggregates: [UsageAggregateRecord]

    /// A batch with the given identity and aggregates.
    public init(sidecarID: String, bootEpoch: UInt64, sequence: UInt64, aggregates: [UsageAggregateRecord]) {
        self.sidecarID = sidecarID
        self.bootEpoch = bootEpoch
        self.sequence = sequence
        self.aggregates = aggregates
    }
}

/// The usage of one key and feature in one period, as one batch carries it.
public struct UsageAggregateRecord: Sendable, Hashable {
    /// The key's id (hex SHA-256 of the API key).
    public var keyID: String
    /// The feature the usage counts against.
    public var feature: String
    /// The core's period id, e.g. `d20261123`.
    public var periodID: String
    /// What to add.
    public var counters: UsageCounters
    /// Units admitted against leases the sending sidecar (this boot epoch) holds; applying the
    /// aggregate settles that much of its outstanding lease (see `LeaseStore`).
    public var leasedUnits: UInt64

    /// An aggregate with the given identity and counters.
    public init(keyID: String, feature: String, periodID: String, counters: UsageCounters, leasedUnits: UInt64 = 0) {
        self.keyID = keyID
        self.feature = feature
        self.periodID = periodID
        self.counters = counters
        self.leasedUnits = leasedUnits
    }
}

/// What applying a batch did.
public struct BatchApplyResult: Sendable, Hashable {
    /// Aggregates newly counted.
    public var appliedAggregates: Int
    /// Aggregates found already counted (by an earlier delivery) and skipped.
    public var duplicateAggregates: Int
    /// The keys whose share of the batch had been counted before (the sinks' audit says so per aggregate).
    public var duplicateKeyIDs: Set<String> = []

    /// A result with the given counts.
    public init(appliedAggregates: Int, duplicateAggregates: Int) {
        self.appliedAggregates = appliedAggregates
        self.duplicateAggregates = duplicateAggregates
    }

    /// `.duplicate` if every aggregate was already there, else `.applied` (an empty batch is applied: nothing to do).
    public var outcome: Outcome { self.duplicateAggregates > 0 && self.appliedAggregates == 0 ? .duplicate : .applied }

    /// The batch-level outcome an acknowledgement reports.
    public enum Outcome: String, Sendable, Hashable {
        /// At least one aggregate was counted now.
        case applied
        /// Everything had been counted before.
        case duplicate
    }
}
