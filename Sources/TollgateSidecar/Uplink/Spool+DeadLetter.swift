extension Spool {
    /// The file that keeps rejected and undecodable batches for audit.
    public var deadLetterPath: String { directory + "/dead-letter.tgs" }

    /// Appends `envelope` with `reason` to the dead-letter file and forces it to disk.
    ///
    /// Rejections are rare and each one is money, so this always syncs.
    public func deadLetter(_ envelope: [UInt8], reason: String) throws(UplinkError) {
        let path = deadLetterPath
        let fd = try SpoolFile.openForAppend(path)
        defer { SpoolFile.closeFile(fd) }
        var payload: [UInt8] = []
        let reasonBytes = Array(reason.utf8)
        SpoolRecord.appendLittleEndian(UInt32(reasonBytes.count), to: &payload)
        payload += reasonBytes
        payload += envelope
        try SpoolFile.writeAll(fd, SpoolRecord.encode(.deadLetter, payload), path: path)
        try SpoolFile.sync(fd, path: path)
        metrics.deadLetters.increment()
    }

    /// The records of the dead-letter file: each reason and envelope, in the order written.
    public func deadLetters() throws(UplinkError) -> [(reason: String, envelope: [UInt8])] {
        let bytes: [UInt8]
        do {
            bytes = try SpoolFile.readAll(deadLetterPath)
        } catch where error.errno == 2 {  // ENOENT: nothing was ever rejected
            return []
        }
        return SpoolRecord.parse(bytes, from: 0).records.compactMap { record in
            guard record.kind == .deadLetter, record.payloadLength >= 4 else { return nil }
            let reasonLength = Int(SpoolRecord.readLittleEndian(UInt32.self, bytes, at: record.payloadOffset))
            let start = record.payloadOffset + 4
            let end = record.payloadOffset + record.payloadLength
            guard reasonLength <= end - start else { return nil }
            let reason = String(decoding: bytes[start ..< start + reasonLength], as: UTF8.self)
            return (reason, Array(bytes[start + reasonLength ..< end]))
        }
    }
}
