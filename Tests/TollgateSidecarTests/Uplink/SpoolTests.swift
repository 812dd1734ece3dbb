import Foundation
import Testing
import TollgateSidecar
import TollgateWire

@Suite("Spool")
struct SpoolTests {
    static let epoch: UInt64 = 1_000

    /// Appends batches 1...count of `epoch`, returning their envelopes.
    static func fill(_ spool: Spool, count: Int, epoch: UInt64 = epoch) throws -> [BatchID: [UInt8]] {
        var written: [BatchID: [UInt8]] = [:]
        for sequence in 1 ... UInt64(count) {
            let id = BatchID(epoch: epoch, sequence: sequence)
            let envelope = try batchEnvelope(id, calls: sequence)
            try spool.append(envelope, id: id)
            written[id] = envelope
        }
        return written
    }

    @Test("unacknowledged batches replay with their original ids and bytes; acked ones do not")
    func replayAfterReopen() async throws {
        try await withTemporaryDirectory { dir in
            let spool = try Spool(directory: dir, options: SpoolOptions(fsync: .always))
            let written = try Self.fill(spool, count: 5)
            try spool.resolve(BatchID(epoch: Self.epoch, sequence: 2), outcome: .applied)
            try spool.resolve(BatchID(epoch: Self.epoch, sequence: 4), outcome: .duplicate)
            spool.close()

            let reopened = try Spool(directory: dir)
            defer { reopened.close() }
            let ids = reopened.unackedBatches.map(\.id.sequence)
            #expect(ids == [1, 3, 5])
            for batch in reopened.unackedBatches {
                #expect(try reopened.read(batch) == written[batch.id])
            }
            #expect(reopened.replayReport.batchRecords == 5)
            #expect(reopened.replayReport.ackRecords == 2)
            #expect(reopened.replayReport.highestEpoch == Self.epoch)
            #expect(reopened.replayReport.tornTails == 0 && reopened.replayReport.corruptRecords == 0)
        }
    }

    @Test("a torn last record is truncated, counted, and the good prefix replays")
    func tornTail() async throws {
        try await withTemporaryDirectory { dir in
            let spool = try Spool(directory: dir, options: SpoolOptions(fsync: .never))
            _ = try Self.fill(spool, count: 4)
            let path = spool.segmentPaths.last!
            spool.close()
            let size = try fileSize(path)
            // Cut the last record in the middle of its payload.
            try FileHandle(forWritingTo: URL(fileURLWithPath: path)).truncate(atOffset: UInt64(size - 5))

            let metrics = TestMetrics()
            let reopened = try Spool(directory: dir, metrics: UplinkMetrics(factory: metrics))
            defer { reopened.close() }
            #expect(reopened.unackedBatches.map(\.id.sequence) == [1, 2, 3])
            #expect(reopened.replayReport.tornTails == 1)
            #expect(reopened.replayReport.corruptRecords == 0)
            #expect(metrics.value(UplinkMetrics.Name.spoolTruncated, [("reason", "torn")]) == 1)
            // The damaged bytes are gone from disk, so a later append lands after good data.
            #expect(try fileSize(path) < size - 5)
            #expect(try fileSize(path) == size - 5 - (reopened.replayReport.truncatedBytes))
        }
    }

    @Test("a record with a bad checksum stops replay of its segment; the prefix replays and it is counted")
    func corruptChecksum() async throws {
        try await withTemporaryDirectory { dir in
            let spool = try Spool(directory: dir, options: SpoolOptions(fsync: .never))
            let written = try Self.fill(spool, count: 4)
            let path = spool.segmentPaths.last!
            spool.close()
            // Flip one byte inside the third batch's payload: after the magic and two records.
            var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
            let recordSizes = (1 ... 2).map { 9 + written[BatchID(epoch: Self.epoch, sequence: UInt64($0))]!.count }
            let third = 8 + recordSizes.reduce(0, +)
            bytes[third + 9 + 3] ^= 0x40
            try Data(bytes).write(to: URL(fileURLWithPath: path))

            let metrics = TestMetrics()
            let reopened = try Spool(directory: dir, metrics: UplinkMetrics(factory: metrics))
            defer { reopened.close() }
            #expect(reopened.unackedBatches.map(\.id.sequence) == [1, 2])
            #expect(reopened.replayReport.corruptRecords == 1)
            #expect(metrics.value(UplinkMetrics.Name.spoolTruncated, [("reason", "corrupt")]) == 1)
            #expect(try fileSize(path) == third)
        }
    }

    @Test("a segment is deleted once every batch in it is acked, and acks survive compaction")
    func compaction() async throws {
        try await withTemporaryDirectory { dir in
            // Small segments: a few batches each.
            let spool = try Spool(directory: dir, options: SpoolOptions(segmentBytes: 400, maxBytes: 1 << 20, fsync: .never))
            _ = try Self.fill(spool, count: 30)
            let filled = spool.segmentPaths.count
            #expect(filled > 4)
            // Settle all but batch 1: its segment must stay, the others may go.
            for sequence in 2 ... 30 {
                try spool.resolve(BatchID(epoch: Self.epoch, sequence: UInt64(sequence)), outcome: .applied)
            }
            let afterMost = spool.segmentPaths.count
            #expect(afterMost < filled)
            spool.close()

            // Replay: only batch 1 comes back, though the acks of its segment-mates were carried forward.
            let reopened = try Spool(directory: dir, options: SpoolOptions(segmentBytes: 400, maxBytes: 1 << 20, fsync: .never))
            #expect(reopened.unackedBatches.map(\.id.sequence) == [1])
            try reopened.resolve(BatchID(epoch: Self.epoch, sequence: 1), outcome: .applied)
            #expect(reopened.unackedCount == 0)
            // Everything settled: only the active segment is left.
            #expect(reopened.segmentPaths.count == 1)
            let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("segment-") }
            #expect(files.count == 1)
            reopened.close()
        }
    }

    @Test("refuse at the size bound: full is reported and nothing accepted is lost")
    func refuseWhenFull() async throws {
        try await withTemporaryDirectory { dir in
            let options = SpoolOptions(segmentBytes: 256, maxBytes: 1_024, fsync: .never)
            let spool = try Spool(directory: dir, options: options)
            var accepted: [BatchID] = []
            var refusal: UplinkError?
            for sequence in 1 ... 100 {
                let id = BatchID(epoch: Self.epoch, sequence: UInt64(sequence))
                let envelope = try batchEnvelope(id)
                do {
                    try spool.append(envelope, id: id)
                    accepted.append(id)
                } catch let error as UplinkError {
                    refusal = error
                    break
                }
            }
            #expect(refusal?.code == .spoolFull)
            #expect(accepted.count > 5 && accepted.count < 100)
            #expect(spool.byteCount <= options.maxBytes)
            #expect(spool.wouldRefuse(envelopeBytes: 40))
            spool.close()

            let reopened = try Spool(directory: dir, options: options)
            #expect(reopened.unackedBatches.map(\.id) == accepted)
            // Acks free room again.
            for id in accepted { try reopened.resolve(id, outcome: .applied) }
            #expect(!reopened.wouldRefuse(envelopeBytes: 40))
            reopened.close()
        }
    }

    @Test("dead letters keep the batch and the reason")
    func deadLetters() async throws {
        try await withTemporaryDirectory { dir in
            let spool = try Spool(directory: dir)
            defer { spool.close() }
            #expect(try spool.deadLetters().isEmpty)
            let envelope = try batchEnvelope(BatchID(epoch: 1, sequence: 1))
            try spool.deadLetter(envelope, reason: "rejected: bad period")
            let letters = try spool.deadLetters()
            #expect(letters.count == 1)
            #expect(letters.first?.reason == "rejected: bad period")
            #expect(letters.first?.envelope == envelope)
        }
    }
}
