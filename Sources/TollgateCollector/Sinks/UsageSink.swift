import TollgateCore
import TollgateStore

/// A destination for what the collector has committed to Redis: applied usage batches and
/// recorded settlements (the JSONL audit log, Stripe meter events).
///
/// Threading: a `SinkFanOut` calls `applied`, `settled` and `close` from its own thread, one
/// event at a time, in the order Redis committed them on this collector. An implementation may
/// block briefly there (a file write), never on the network: sinks that talk to a service keep
/// their own tasks and only take note here.
public protocol UsageSink: Sendable {
    /// A short name for metrics and logs (`audit`, `stripe`).
    var name: String { get }
    /// A usage batch Redis has (counted now, or counted by an earlier delivery).
    func applied(_ batch: AppliedBatch)
    /// A settlement recorded in the key's ledger (once per claim).
    func settled(_ settlement: SettlementEvent)
    /// No more events will come: flush and release what the sink holds.
    func close()
}

/// One usage batch after Redis answered for it.
public struct AppliedBatch: Sendable, Hashable {
    /// The collector that applied it.
    public var collectorID: String
    /// The batch as the store took it: `(sidecar, epoch, sequence)` and its aggregates.
    public var batch: UsageBatchRecord
    /// Keys whose share Redis had already counted (a retried delivery): not counted again now.
    public var duplicateKeyIDs: Set<String>
    /// When Redis answered.
    public var appliedAt: Timestamp

    /// A batch with the given parts.
    public init(collectorID: String, batch: UsageBatchRecord, duplicateKeyIDs: Set<String>, appliedAt: Timestamp) {
        self.collectorID = collectorID
        self.batch = batch
        self.duplicateKeyIDs = duplicateKeyIDs
        self.appliedAt = appliedAt
    }

    /// `applied` when every key's share was counted now, `duplicate` when none was, else `partial`.
    public var outcome: String {
        let keys = Set(self.batch.aggregates.map(\.keyID))
        if self.duplicateKeyIDs.isEmpty { return "applied" }
        return keys.isSubset(of: self.duplicateKeyIDs) ? "duplicate" : "partial"
    }
}

/// One settlement after its ledger entry was written.
public struct SettlementEvent: Sendable, Hashable {
    /// The collector that recorded it.
    public var collectorID: String
    /// The ledger entry.
    public var record: SettlementRecord
    /// When it was recorded.
    public var recordedAt: Timestamp

    /// A settlement with the given parts.
    public init(collectorID: String, record: SettlementRecord, recordedAt: Timestamp) {
        self.collectorID = collectorID
        self.record = record
        self.recordedAt = recordedAt
    }
}

/// What the fan-out carries from the ingest thread (or a payment task) to the sinks.
public enum SinkEvent: Sendable, Hashable {
    /// A usage batch.
    case applied(AppliedBatch)
    /// A settlement.
    case settled(SettlementEvent)
}
