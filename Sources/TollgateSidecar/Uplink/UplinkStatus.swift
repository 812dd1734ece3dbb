import Foundation

/// A snapshot of the uplink for `/healthz` and tests.
public struct UplinkStatus: Sendable, Hashable {
    /// The sidecar id.
    public var sidecarID: String
    /// This run's boot epoch (0 until the spool has been replayed).
    public var bootEpoch: UInt64 = 0
    /// The sequence the next batch will get.
    public var nextSequence: UInt64 = 1
    /// True once the spool is replayed and the socket is connecting.
    public var isRunning = false
    /// True while a collector replied within the last few heartbeat intervals.
    public var isConnected = false
    /// True while new usage is refused because the spool is full.
    public var isFull = false
    /// Bytes in live spool segments.
    public var spoolBytes = 0
    /// Records in live spool segments.
    public var spoolRecords = 0
    /// Batches spooled and not yet acknowledged.
    public var unackedBatches = 0
    /// Batches sent and awaiting an ack right now.
    public var inFlightBatches = 0
    /// Closed batches waiting for room in the spool.
    public var unspooledBatches = 0
    /// Batches sent for the first time, this run.
    public var batchesSent: UInt64 = 0
    /// Batches acknowledged as applied or duplicate, this run.
    public var batchesAcked: UInt64 = 0
    /// Re-sends, this run.
    public var batchesRetried: UInt64 = 0
    /// Batches the collector rejected (kept in the dead-letter file), this run.
    public var batchesRejected: UInt64 = 0
    /// What the spool replay found at start.
    public var replay = SpoolReplayReport()
    /// Why the uplink thread stopped, if it failed.
    public var failure: String?

    /// An empty snapshot for `sidecarID`.
    public init(sidecarID: String) {
        self.sidecarID = sidecarID
    }
}

/// The latest status, written by the uplink thread and read by anyone.
// @unchecked Sendable: `value` is only touched under `lock`.
final class UplinkStatusBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: UplinkStatus

    init(_ value: UplinkStatus) { self.value = value }

    var current: UplinkStatus { lock.withLock { value } }

    func update(_ body: (inout UplinkStatus) -> Void) {
        lock.withLock { body(&value) }
    }
}
