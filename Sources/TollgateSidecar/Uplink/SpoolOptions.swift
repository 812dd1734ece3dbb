/// When the spool forces its writes to stable storage.
public enum SpoolFsyncPolicy: Sendable, Hashable {
    /// After every append: a batch survives power loss once it is sent. Slowest.
    case always
    /// At most this many milliseconds after an append: bounds what power loss can take.
    case interval(milliseconds: Int)
    /// Never explicitly; the OS writes back on its own. Survives a process crash, not power loss.
    case never
}

/// What the spool does when an append would pass its size bound.
public enum SpoolOverflowPolicy: Sendable, Hashable {
    /// Refuse the append and report full; the uplink then refuses new usage (fail closed) until
    /// acks free space. Nothing already accepted is ever dropped. The only policy offered: dropping
    /// the oldest batch would lose counts.
    case refuse
}

/// Settings of the on-disk spool.
public struct SpoolOptions: Sendable, Hashable {
    /// A segment file is closed and a new one started once it reaches this size.
    public var segmentBytes: Int = 8 << 20
    /// The bound on live segment bytes; appends beyond it are refused (an ack is always written).
    public var maxBytes: Int = 512 << 20
    /// When appends are forced to disk.
    public var fsync: SpoolFsyncPolicy = .interval(milliseconds: 100)
    /// What happens at `maxBytes`.
    public var overflow: SpoolOverflowPolicy = .refuse

    /// Defaults: 8 MiB segments, 512 MiB bound, fsync every 100 ms, refuse on overflow.
    public init(
        segmentBytes: Int = 8 << 20, maxBytes: Int = 512 << 20,
        fsync: SpoolFsyncPolicy = .interval(milliseconds: 100), overflow: SpoolOverflowPolicy = .refuse
    ) {
        self.segmentBytes = segmentBytes
        self.maxBytes = maxBytes
        self.fsync = fsync
        self.overflow = overflow
    }

    func validate() throws(UplinkError) {
        guard segmentBytes >= 64 else { throw UplinkError(.invalidConfiguration, "segmentBytes must be at least 64") }
        guard maxBytes >= segmentBytes else { throw UplinkError(.invalidConfiguration, "maxBytes must be at least segmentBytes") }
        if case .interval(let ms) = fsync, ms < 1 {
            throw UplinkError(.invalidConfiguration, "fsync interval must be at least 1 ms")
        }
    }
}

/// What replaying the spool found at start.
public struct SpoolReplayReport: Sendable, Hashable {
    /// Segment files read.
    public var segments = 0
    /// Batch records read (acked or not).
    public var batchRecords = 0
    /// Ack records read.
    public var ackRecords = 0
    /// Batches still unacknowledged: they are re-sent under their original ids.
    public var unackedBatches = 0
    /// Torn tails (a record cut short by a crash) truncated away.
    public var tornTails = 0
    /// Corrupt records (bad checksum, length or type) at which a segment was truncated.
    public var corruptRecords = 0
    /// Bytes removed by truncation.
    public var truncatedBytes = 0
    /// Records with a good checksum whose batch did not decode; moved to the dead-letter file.
    public var undecodableBatches = 0
    /// The highest batch epoch seen, so the next epoch can be chosen above it.
    public var highestEpoch: UInt64 = 0
}
