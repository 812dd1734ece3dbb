/// The identity of one usage batch within a sidecar: its boot epoch and its sequence in that epoch.
///
/// Together with the sidecar id this is the key the collector applies a batch under exactly once,
/// so a batch keeps it for life: replayed batches are re-sent under it, never renumbered.
public struct BatchID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// A value unique per process start.
    public var epoch: UInt64
    /// Starts at 1 and grows by one per batch within the epoch.
    public var sequence: UInt64

    /// Creates an id.
    public init(epoch: UInt64, sequence: UInt64) {
        self.epoch = epoch
        self.sequence = sequence
    }

    /// Orders by epoch, then sequence: the order batches were made in.
    public static func < (lhs: BatchID, rhs: BatchID) -> Bool {
        (lhs.epoch, lhs.sequence) < (rhs.epoch, rhs.sequence)
    }

    /// `epoch/sequence`, for logs.
    public var description: String { "\(epoch)/\(sequence)" }
}

/// How a collector settled a batch; any outcome ends the sidecar's duty to send it.
public enum BatchOutcome: UInt8, Sendable, Hashable {
    /// Committed to Redis now.
    case applied = 1
    /// Committed earlier (a retry of a batch that was applied): counted once.
    case duplicate = 2
    /// Refused as malformed; kept in the dead-letter file, never retried.
    case rejected = 3
}
