import Logging

extension Spool {
    /// The segment index in a file name `segment-<digits>.tgs`, or nil for other files.
    static func segmentIndex(_ name: String) -> UInt64? {
        guard name.hasPrefix("segment-"), name.hasSuffix(".tgs") else { return nil }
        return UInt64(name.dropFirst("segment-".count).dropLast(".tgs".count))
    }

    /// Reads every segment, truncates damage, and rebuilds which batches are still unsettled.
    func replay() throws(UplinkError) {
        let indices = try SpoolFile.list(directory).compactMap(Self.segmentIndex).sorted()
        var acks: [(id: BatchID, outcome: BatchOutcome, holder: UInt64)] = []
        for index in indices {
            let path = segmentPath(index)
            let bytes = try SpoolFile.readAll(path)
            guard bytes.count >= SpoolRecord.magic.count, bytes.starts(with: SpoolRecord.magic) else {
                try setAsideBadHeader(path: path, bytes: bytes)
                continue
            }
            replayReport.segments += 1
            let (records, damage) = SpoolRecord.parse(bytes, from: SpoolRecord.magic.count)
            var length = bytes.count
            if let (offset, kind) = damage {
                try truncate(path: path, at: offset, of: bytes.count, kind)
                length = offset
            }
            var segment = Segment(index: index, path: path, bytes: length, records: records.count)
            for record in records {
                let payload = bytes[record.payloadOffset ..< record.payloadOffset + record.payloadLength]
                switch record.kind {
                case .batch:
                    replayBatch(payload, record: record, into: &segment)
                case .ack:
                    if let (id, outcome) = SpoolRecord.decodeAck(payload) {
                        replayReport.ackRecords += 1
                        acks.append((id, outcome, index))
                    } else {
                        logger.error("spool ack record with a good checksum does not decode; ignored",
                                     metadata: ["tollgate.segment": "\(path)", "tollgate.offset": "\(record.offset)"])
                    }
                case .deadLetter:
                    logger.error("dead-letter record inside a spool segment; ignored", metadata: ["tollgate.segment": "\(path)"])
                }
            }
            segments[index] = segment
            totalBytes += segment.bytes
            totalRecords += segment.records
        }
        for ack in acks {
            guard let home = batchSegment[ack.id] else { continue }  // its segment was deleted already
            segments[home]!.unresolved.remove(ack.id)
            locations[ack.id] = nil
            if home != ack.holder { segments[ack.holder]!.heldAcks[ack.id] = ack.outcome }
        }
        replayReport.unackedBatches = locations.count
        if replayReport.segments > 0 {
            logger.info("spool replayed", metadata: [
                "tollgate.segments": "\(replayReport.segments)", "tollgate.unacked": "\(replayReport.unackedBatches)",
                "tollgate.torn": "\(replayReport.tornTails)", "tollgate.corrupt": "\(replayReport.corruptRecords)",
            ])
        }
    }

    private func replayBatch(_ payload: ArraySlice<UInt8>, record: SpoolRecord.Parsed, into segment: inout Segment) {
        replayReport.batchRecords += 1
        guard let envelope = try? codec.decode(payload), case .usageBatch(let batch)? = envelope.body else {
            // The checksum held, so this is a writer bug or a foreign format: keep it, never drop it.
            replayReport.undecodableBatches += 1
            logger.error("spooled batch with a good checksum does not decode; moved to the dead-letter file",
                         metadata: ["tollgate.segment": "\(segment.path)", "tollgate.offset": "\(record.offset)"])
            try? deadLetter(Array(payload), reason: "undecodable spool record in \(segment.path) at \(record.offset)")
            return
        }
        let id = BatchID(epoch: batch.bootEpoch, sequence: batch.sequence)
        guard batchSegment[id] == nil else {
            logger.warning("batch spooled twice; keeping the first copy", metadata: ["tollgate.batch": "\(id)"])
            return
        }
        replayReport.highestEpoch = max(replayReport.highestEpoch, id.epoch)
        segment.batches.append(id)
        segment.unresolved.insert(id)
        batchSegment[id] = segment.index
        locations[id] = SpooledBatch(id: id, segment: segment.index, offset: record.payloadOffset, length: record.payloadLength)
    }

    private func truncate(path: String, at offset: Int, of size: Int, _ damage: SpoolRecord.Damage) throws(UplinkError) {
        switch damage {
        case .torn:
            replayReport.tornTails += 1
            metrics.spoolTorn.increment()
            logger.warning("spool segment ends in a torn record; truncating it", metadata: [
                "tollgate.segment": "\(path)", "tollgate.offset": "\(offset)", "tollgate.bytes": "\(size - offset)",
            ])
        case .corrupt(let reason):
            replayReport.corruptRecords += 1
            metrics.spoolCorrupt.increment()
            logger.error("spool segment is corrupt; truncating it at the damage", metadata: [
                "tollgate.segment": "\(path)", "tollgate.reason": "\(reason)", "tollgate.bytes": "\(size - offset)",
            ])
        }
        replayReport.truncatedBytes += size - offset
        try SpoolFile.truncateFile(path, to: offset)
    }

    /// A segment whose magic is missing: a torn header is removed, anything else is set aside.
    private func setAsideBadHeader(path: String, bytes: [UInt8]) throws(UplinkError) {
        if bytes.count < SpoolRecord.magic.count, SpoolRecord.magic.starts(with: bytes) {
            replayReport.tornTails += 1
            replayReport.truncatedBytes += bytes.count
            metrics.spoolTorn.increment()
            try SpoolFile.removeFile(path)
        } else {
            replayReport.corruptRecords += 1
            replayReport.truncatedBytes += bytes.count
            metrics.spoolCorrupt.increment()
            logger.error("spool file has no valid header; renamed to .corrupt", metadata: ["tollgate.segment": "\(path)"])
            try SpoolFile.moveFile(path, to: path + ".corrupt")
        }
    }
}
