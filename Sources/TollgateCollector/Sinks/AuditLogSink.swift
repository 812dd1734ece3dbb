import Foundation
import Logging
import Metrics
import TollgateConfig
import TollgateCore
import TollgateStore

/// The JSONL audit log: one line per usage batch Redis answered for, one per settlement.
///
/// A batch line (keys sorted, one JSON object per line):
/// ```json
/// {"aggregates":[{"calls":3,"feature":"api_call","key":"81a7…","new":true,"overage_charge":0,"overage_units":0,
///   "period":"d20261123","req_bytes":120,"resp_bytes":900,"status":{"1xx":0,"2xx":3,"3xx":0,"4xx":0,"5xx":0},"units":3}],
///  "at_ms":1795000000000,"collector":"collector-1","epoch":7,"outcome":"applied","seq":42,"sidecar":"sidecar-1","type":"batch"}
/// ```
/// `new` is false for a key whose share an earlier delivery had counted (`outcome` is then
/// `duplicate` or `partial`): a batch retried after a collector crash is logged again, so every
/// batch Redis holds has a line even when the crash came before its first line.
/// A settlement line: `type` `settlement`, `key`, `claim`, `payer`, `amount` (atomic units),
/// `asset`, `network`, `tx`, `route`, `feature`, `period`, `credited`, `grant`, `status`, `at_ms`.
///
/// Threading: called on the fan-out's thread only; the file belongs to that thread.
// @unchecked Sendable: `file` and `lastErrorLog` are touched only from the fan-out's single thread.
public final class AuditLogSink: UsageSink, @unchecked Sendable {
    /// `audit`.
    public let name = "audit"
    private let file: AuditLogFile
    private let logger: Logger
    private var lastErrorLog = ContinuousClock.now - .seconds(60)
    private let batchLines = Counter(label: SinkMetricName.auditLines, dimensions: [("type", "batch")])
    private let settlementLines = Counter(label: SinkMetricName.auditLines, dimensions: [("type", "settlement")])
    private let errors = Counter(label: SinkMetricName.auditErrors)
    private let rotations = Counter(label: SinkMetricName.auditRotations)

    /// A log as `settings` describe; the file is opened by `open()`.
    public init(settings: AuditLogSettings, logger: Logger) {
        self.file = AuditLogFile(path: settings.path, maxBytes: settings.maxBytes, files: settings.files)
        self.logger = logger
    }

    /// Opens the file at start, so a path that cannot be written stops the collector with a clear error.
    public func open() throws(AuditLogError) {
        try self.file.open()
    }

    public func applied(_ event: AppliedBatch) {
        let aggregates: [[String: Any]] = event.batch.aggregates.map { aggregate in
            let c = aggregate.counters
            var line: [String: Any] = [
                "key": aggregate.keyID, "feature": aggregate.feature, "period": aggregate.periodID,
                "new": !event.duplicateKeyIDs.contains(aggregate.keyID),
                "calls": c.calls, "units": c.units,
                "status": ["1xx": c.statuses.informational, "2xx": c.statuses.success, "3xx": c.statuses.redirection,
                           "4xx": c.statuses.clientError, "5xx": c.statuses.serverError],
                "req_bytes": c.requestBytes, "resp_bytes": c.responseBytes,
                "overage_units": c.overageUnits, "overage_charge": c.overageChargeAtomic,
            ]
            if !c.extraUnits.isEmpty { line["extra_units"] = c.extraUnits }
            return line
        }
        self.write([
            "type": "batch", "at_ms": event.appliedAt.milliseconds, "collector": event.collectorID,
            "sidecar": event.batch.sidecarID, "epoch": event.batch.bootEpoch, "seq": event.batch.sequence,
            "outcome": event.outcome, "aggregates": aggregates,
        ], counter: self.batchLines)
    }

    public func settled(_ event: SettlementEvent) {
        let r = event.record
        self.write([
            "type": "settlement", "at_ms": event.recordedAt.milliseconds, "collector": event.collectorID,
            "key": r.keyID, "claim": r.claimID, "payer": r.payer, "amount": r.amountAtomic, "asset": r.asset,
            "network": r.network, "tx": r.transaction, "route": r.route, "feature": r.feature, "period": r.periodID,
            "credited": r.creditedUnits, "grant": r.grant, "status": r.status,
        ], counter: self.settlementLines)
    }

    public func close() {
        self.file.close()
    }

    private func write(_ object: [String: Any], counter: Counter) {
        do {
            var line = try Array(JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            line.append(UInt8(ascii: "\n"))
            if try self.file.append(line) { self.rotations.increment() }
            counter.increment()
        } catch {
            self.errors.increment()
            let now = ContinuousClock.now
            if now - self.lastErrorLog >= .seconds(10) {
                self.lastErrorLog = now
                self.logger.error("audit log write failed", metadata: ["tollgate.path": "\(self.file.path)", "error": "\(error)"])
            }
        }
    }
}
