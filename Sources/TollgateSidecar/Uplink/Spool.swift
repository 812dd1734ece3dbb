import Logging
import TollgateWire

/// Where a spooled, unacknowledged batch's envelope lies on disk.
public struct SpooledBatch: Sendable, Hashable {
    /// The batch's identity, fixed when it was first spooled.
    public var id: BatchID
    let segment: UInt64
    let offset: Int
    let length: Int
}

/// The append-only on-disk log of usage batches and their acks; the uplink's source of truth.
///
/// Every batch is appended here before it is first sent; an ack record is appended when a collector
/// settles it. A segment file is deleted once every batch in it is settled. On open, the spool
/// replays its segments, verifies every checksum, truncates a torn or corrupt tail (counted in
/// ``UplinkMetrics/Name/spoolTruncated``), and lists the unacknowledged batches so they are re-sent
/// under their original ids. The record format is described on `SpoolRecord`.
///
/// Threading: not thread-safe; one owner (the uplink thread) uses it. It does blocking file I/O,
/// so never use it on a NIO event loop or the cooperative pool.
///
/// ```swift
/// let spool = try Spool(directory: "/var/lib/tollgate/spool")
/// for batch in spool.unackedBatches { resend(try spool.read(batch)) }
/// let spooled = try spool.append(envelopeBytes, id: BatchID(epoch: epoch, sequence: 1))
/// try spool.resolve(spooled.id, outcome: .applied)
/// ```
public final class Spool {
    struct Segment {
        let index: UInt64
        let path: String
        var bytes: Int
        var records: Int
        /// Every batch record in this segment, settled or not.
        var batches: [BatchID] = []
        /// Batches in this segment not yet settled; the segment lives while this is not empty.
        var unresolved: Set<BatchID> = []
        /// Ack records here for batches that live in another segment: carried forward on deletion.
        var heldAcks: [BatchID: BatchOutcome] = [:]
    }

    /// The directory holding the segment files.
    public let directory: String
    /// The settings it was opened with.
    public let options: SpoolOptions
    /// What the replay at open found.
    public internal(set) var replayReport = SpoolReplayReport()

    let logger: Logger
    let metrics: UplinkMetrics
    let codec: WireCodec
    var segments: [UInt64: Segment] = [:]
    var active: UInt64 = 0
    var activeFD: Int32 = -1
    var batchSegment: [BatchID: UInt64] = [:]
    var locations: [BatchID: SpooledBatch] = [:]
    var totalBytes = 0
    var totalRecords = 0
    private var unsynced = false
    private var lastSync = ContinuousClock.now

    /// Opens (creating it if needed) and replays the spool in `directory`.
    public init(
        directory: String, options: SpoolOptions = SpoolOptions(), metrics: UplinkMetrics = UplinkMetrics(),
        maxFrameBytes: Int = WireCodec.defaultMaxFrameBytes, logger: Logger = Logger(label: "tollgate.spool")
    ) throws(UplinkError) {
        try options.validate()
        self.directory = directory
        self.options = options
        self.metrics = metrics
        self.codec = WireCodec(maxFrameBytes: max(maxFrameBytes, SpoolRecord.maxPayloadBytes))
        var logger = logger
        logger[metadataKey: "tollgate.spool"] = "\(directory)"
        self.logger = logger
        try SpoolFile.makeDirectory(directory)
        try replay()
        try startSegment(index: (segments.keys.max() ?? 0) + 1)
        do {
            try compact()
        } catch {
            close()
            throw error
        }
        publishGauges()
    }

    deinit {
        assert(activeFD < 0, "Spool was not closed before deinit; call close()")
    }

    /// Batches spooled and not yet settled, oldest first.
    public var unackedBatches: [SpooledBatch] { locations.values.sorted { $0.id < $1.id } }
    /// How many batches are not yet settled.
    public var unackedCount: Int { locations.count }
    /// Bytes in live segment files.
    public var byteCount: Int { totalBytes }
    /// Records (batches and acks) in live segment files.
    public var recordCount: Int { totalRecords }
    /// Paths of the live segment files, oldest first.
    public var segmentPaths: [String] { segments.keys.sorted().map { segments[$0]!.path } }
    /// True when a batch of `envelopeBytes` would be refused by the size bound now.
    public func wouldRefuse(envelopeBytes: Int) -> Bool {
        !locations.isEmpty && totalBytes + SpoolRecord.headerBytes + envelopeBytes > options.maxBytes
    }

    /// True while `id` is spooled and not yet settled.
    public func isUnacked(_ id: BatchID) -> Bool { locations[id] != nil }

    /// Appends a batch before it is first sent; throws `spoolFull` at the size bound.
    ///
    /// An append to a spool with nothing unacknowledged always succeeds, so a batch larger than the
    /// bound cannot wedge it. `ignoringBound` is for the final flush at shutdown: usage already
    /// accepted is worth more than the bound.
    @discardableResult
    public func append(_ envelope: [UInt8], id: BatchID, ignoringBound: Bool = false) throws(UplinkError) -> SpooledBatch {
        precondition(batchSegment[id] == nil, "batch \(id) spooled twice")
        if !ignoringBound, wouldRefuse(envelopeBytes: envelope.count) {
            metrics.spoolFull.record(1)
            throw UplinkError(.spoolFull, "spool holds \(totalBytes) bytes; bound is \(options.maxBytes)", path: directory)
        }
        let record = SpoolRecord.encode(.batch, envelope)
        try rotateIfNeeded(adding: record.count)
        let offset = segments[active]!.bytes
        try write(record)
        let batch = SpooledBatch(id: id, segment: active, offset: offset + SpoolRecord.headerBytes, length: envelope.count)
        segments[active]!.batches.append(id)
        segments[active]!.unresolved.insert(id)
        batchSegment[id] = active
        locations[id] = batch
        if options.fsync == .always { try sync() }
        metrics.spoolFull.record(0)
        publishGauges()
        return batch
    }

    /// Records that a collector settled `id`, and deletes segments that are now fully settled.
    ///
    /// Settling an unknown or already settled batch does nothing (a late duplicate ack).
    public func resolve(_ id: BatchID, outcome: BatchOutcome) throws(UplinkError) {
        guard let home = batchSegment[id], segments[home]?.unresolved.contains(id) == true else { return }
        try writeAck(id, outcome, home: home, rotate: true)
        segments[home]!.unresolved.remove(id)
        locations[id] = nil
        if options.fsync == .always { try sync() }
        try compact()
        publishGauges()
    }

    /// The envelope bytes of a spooled batch.
    public func read(_ batch: SpooledBatch) throws(UplinkError) -> [UInt8] {
        guard let segment = segments[batch.segment] else {
            throw UplinkError(.io, "segment \(batch.segment) of batch \(batch.id) is gone", path: directory)
        }
        return try SpoolFile.readRange(segment.path, offset: batch.offset, length: batch.length)
    }

    /// Forces pending writes to disk when the `interval` policy says it is time.
    public func syncIfDue() throws(UplinkError) {
        guard unsynced, case .interval(let ms) = options.fsync, ContinuousClock.now - lastSync >= .milliseconds(ms) else { return }
        try sync()
    }

    /// Forces pending writes to disk (except under `never`) and closes the active segment.
    public func close() {
        guard activeFD >= 0 else { return }
        if options.fsync != .never { try? sync() }
        SpoolFile.closeFile(activeFD)
        activeFD = -1
    }

    // MARK: Writing

    private func sync() throws(UplinkError) {
        try SpoolFile.sync(activeFD, path: segments[active]!.path)
        unsynced = false
        lastSync = .now
    }

    func segmentPath(_ index: UInt64) -> String {
        let digits = String(index)
        return directory + "/segment-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".tgs"
    }

    private func startSegment(index: UInt64) throws(UplinkError) {
        let path = segmentPath(index)
        let fd = try SpoolFile.openForAppend(path)
        do {
            try SpoolFile.writeAll(fd, SpoolRecord.magic, path: path)
            if options.fsync != .never {
                try SpoolFile.sync(fd, path: path)
                try SpoolFile.syncDirectory(directory)
            }
        } catch {
            SpoolFile.closeFile(fd)
            throw error
        }
        active = index
        activeFD = fd
        segments[index] = Segment(index: index, path: path, bytes: SpoolRecord.magic.count, records: 0)
        totalBytes += SpoolRecord.magic.count
    }

    private func rotateIfNeeded(adding count: Int) throws(UplinkError) {
        let current = segments[active]!
        guard current.records > 0, current.bytes + count > options.segmentBytes else { return }
        if options.fsync != .never { try sync() }
        SpoolFile.closeFile(activeFD)
        activeFD = -1
        try startSegment(index: active + 1)
        try compact()
    }

    /// Appends `record` to the active segment, cutting a partial write back off on failure.
    private func write(_ record: [UInt8]) throws(UplinkError) {
        let path = segments[active]!.path
        do {
            try SpoolFile.writeAll(activeFD, record, path: path)
        } catch {
            try? SpoolFile.truncateFile(path, to: segments[active]!.bytes)
            throw error
        }
        segments[active]!.bytes += record.count
        segments[active]!.records += 1
        totalBytes += record.count
        totalRecords += 1
        unsynced = true
    }

    private func writeAck(_ id: BatchID, _ outcome: BatchOutcome, home: UInt64, rotate: Bool) throws(UplinkError) {
        let record = SpoolRecord.encode(.ack, SpoolRecord.ackPayload(id, outcome))
        if rotate { try rotateIfNeeded(adding: record.count) }
        try write(record)
        if home != active { segments[active]!.heldAcks[id] = outcome }
    }

    // MARK: Compaction

    /// Deletes every settled segment except the active one, carrying forward the acks they hold
    /// for batches in segments that live on (else a replay would re-send those batches).
    func compact() throws(UplinkError) {
        while let index = segments.keys.sorted().first(where: { $0 != active && segments[$0]!.unresolved.isEmpty }) {
            let segment = segments.removeValue(forKey: index)!
            for id in segment.batches { batchSegment[id] = nil }
            // No rotation while carrying forward, so this loop deletes and never creates segments.
            for (id, outcome) in segment.heldAcks.sorted(by: { $0.key < $1.key }) {
                if let home = batchSegment[id] { try writeAck(id, outcome, home: home, rotate: false) }
            }
            if options.fsync == .always { try sync() }
            try SpoolFile.removeFile(segment.path)
            totalBytes -= segment.bytes
            totalRecords -= segment.records
            if options.fsync != .never { try SpoolFile.syncDirectory(directory) }
            logger.debug("deleted settled spool segment", metadata: ["tollgate.segment": "\(segment.path)"])
        }
    }

    func publishGauges() {
        metrics.spoolBytes.record(totalBytes)
        metrics.spoolRecords.record(totalRecords)
    }
}
