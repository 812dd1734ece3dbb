
/// A decoded frame: a usage batch read straight into plain values, or any other envelope.
public enum DecodedFrame: Sendable {
    /// A `usage_batch` envelope, with the envelope's correlation id and send time.
    case usageBatch(UsageBatchFrame, correlationID: UInt64, sentAtUnixMs: Int64)
    /// Every other kind, decoded by the generated code.
    case envelope(Tollgate_V1_Envelope)
}

extension WireCodec {
    /// Parses one frame like `decode(_:)`, with the same checks and errors, but reads a usage batch
    /// into a `UsageBatchFrame` without the generated message types (see `UsageBatchFrame`).
    public func decodeFrame(_ bytes: [UInt8]) throws(WireError) -> DecodedFrame {
        guard bytes.count <= self.maxFrameBytes else {
            throw WireError(.oversized, "frame of \(bytes.count) bytes exceeds the \(self.maxFrameBytes)-byte limit")
        }
        // Only a well-formed single envelope whose body is a usage batch takes the fast path;
        // everything else (and every error report) goes through `decode`.
        guard let parts = Self.usageBatchParts(bytes) else {
            return .envelope(try self.decode(bytes))
        }
        guard parts.version == Self.protocolVersion else {
            throw WireError(.unsupportedVersion, "protocol version \(parts.version), this build speaks \(Self.protocolVersion)")
        }
        do {
            let batch = try bytes.withUnsafeBufferPointer { all throws(ProtobufReader.Failure) in
                var reader = ProtobufReader(UnsafeBufferPointer(rebasing: all[parts.body]))
                return try reader.usageBatch()
            }
            return .usageBatch(batch, correlationID: parts.correlationID, sentAtUnixMs: parts.sentAtUnixMs)
        } catch {
            throw WireError(.malformed, "frame of \(bytes.count) bytes is not an Envelope: \(error.reason)")
        }
    }

    /// The envelope fields and the batch's byte range, when `bytes` is one envelope (no top-level
    /// field repeated, see `isSingleEnvelope`) with a `usage_batch` body; nil otherwise.
    static func usageBatchParts(_ bytes: [UInt8]) -> (version: UInt32, correlationID: UInt64, sentAtUnixMs: Int64, body: Range<Int>)? {
        guard Self.isSingleEnvelope(bytes) else { return nil }
        return bytes.withUnsafeBufferPointer { all in
            var reader = ProtobufReader(all)
            var version: UInt32 = 0
            var correlationID: UInt64 = 0
            var sentAt: Int64 = 0
            var body: Range<Int>?
            do {
                while let (field, wireType) = try reader.tag() {
                    switch (field, wireType) {
                    case (1, 0): version = UInt32(truncatingIfNeeded: try reader.varint())
                    case (2, 0): correlationID = try reader.varint()
                    case (3, 0): sentAt = Int64(bitPattern: try reader.varint())
                    case (Self.usageBatchField, 2): body = try reader.lengthDelimitedRange()
                    default:
                        guard field < Self.firstBodyField else { return nil }  // another kind
                        try reader.skip(wireType)
                    }
                }
            } catch {
                return nil
            }
            return body.map { (version, correlationID, sentAt, $0) }
        }
    }
}

/// Reads protobuf fields from a byte buffer with SwiftProtobuf's rules for proto3: the last value
/// of a repeated singular field wins, a sub-message seen twice is merged, a known field with an
/// unexpected wire type is skipped like an unknown one, and strings must be valid UTF-8. Groups
/// (wire types 3 and 4, never written by Tollgate) are refused as malformed.
struct ProtobufReader {
    struct Failure: Error {
        var reason: String
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index: Int
    private let end: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
        self.end = bytes.endIndex
    }

    /// The next field number and wire type, or nil at the end.
    mutating func tag() throws(Failure) -> (UInt64, UInt64)? {
        guard self.index < self.end else { return nil }
        let tag = try self.varint()
        let field = tag >> 3
        let wireType = tag & 7
        guard field > 0, wireType != 3, wireType != 4, wireType < 6 else {
            throw Failure(reason: "bad tag \(tag)")
        }
        return (field, wireType)
    }

    mutating func varint() throws(Failure) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while self.index < self.end {
            let byte = self.bytes[self.index]
            self.index += 1
            value |= UInt64(byte & 0x7F) &<< shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            guard shift <= 63 else { throw Failure(reason: "varint longer than 10 bytes") }
        }
        throw Failure(reason: "truncated varint")
    }

    mutating func lengthDelimitedRange() throws(Failure) -> Range<Int> {
        let length = try self.varint()
        guard length < 0x7FFF_FFFF, length <= UInt64(self.end - self.index) else {
            throw Failure(reason: "truncated length-delimited field")
        }
        let start = self.index
        self.index += Int(length)
        return start..<self.index
    }

    mutating func skip(_ wireType: UInt64) throws(Failure) {
        switch wireType {
        case 0: _ = try self.varint()
        case 1, 5:
            let width = wireType == 1 ? 8 : 4
            guard self.end - self.index >= width else { throw Failure(reason: "truncated fixed-width field") }
            self.index += width
        default: _ = try self.lengthDelimitedRange()
        }
    }

    mutating func string() throws(Failure) -> String {
        let range = try self.lengthDelimitedRange()
        let slice = UnsafeBufferPointer(rebasing: self.bytes[range])
        guard let text = Self.validUTF8(slice) else { throw Failure(reason: "invalid UTF-8 in a string") }
        return text
    }

    private static func validUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, *) {
            return String(validating: bytes, as: UTF8.self)
        }
        let text = String(decoding: bytes, as: UTF8.self)
        return text.utf8.elementsEqual(bytes) ? text : nil
    }

    /// A reader of the sub-message that comes next.
    mutating func subMessage() throws(Failure) -> ProtobufReader {
        ProtobufReader(UnsafeBufferPointer(rebasing: self.bytes[try self.lengthDelimitedRange()]))
    }

    mutating func usageBatch() throws(Failure) -> UsageBatchFrame {
        var batch = UsageBatchFrame(sidecarID: "", bootEpoch: 0, sequence: 0)
        while let (field, wireType) = try self.tag() {
            switch (field, wireType) {
            case (1, 2): batch.sidecarID = try self.string()
            case (2, 0): batch.bootEpoch = try self.varint()
            case (3, 0): batch.sequence = try self.varint()
            case (4, 0): batch.createdAtUnixMs = Int64(bitPattern: try self.varint())
            case (5, 2):
                var reader = try self.subMessage()
                batch.aggregates.append(try reader.aggregate())
            default: try self.skip(wireType)
            }
        }
        return batch
    }

    mutating func aggregate() throws(Failure) -> UsageBatchFrame.Aggregate {
        var a = UsageBatchFrame.Aggregate(keyID: "", feature: "", periodID: "")
        while let (field, wireType) = try self.tag() {
            switch (field, wireType) {
            case (1, 2): a.keyID = try self.string()
            case (2, 2): a.feature = try self.string()
            case (3, 2): a.periodID = try self.string()
            case (4, 0): a.calls = try self.varint()
            case (5, 0): a.units = try self.varint()
            case (6, 2):
                var status = try self.subMessage()
                while let (statusField, statusWireType) = try status.tag() {
                    switch (statusField, statusWireType) {
                    case (1, 0): a.informational = try status.varint()
                    case (2, 0): a.success = try status.varint()
                    case (3, 0): a.redirection = try status.varint()
                    case (4, 0): a.clientError = try status.varint()
                    case (5, 0): a.serverError = try status.varint()
                    default: try status.skip(statusWireType)
                    }
                }
            case (7, 0): a.requestBytes = try self.varint()
            case (8, 0): a.responseBytes = try self.varint()
            case (9, 0): a.latencySumUs = try self.varint()
            case (10, 0): a.latencyMaxUs = try self.varint()
            case (11, 2):
                var entry = try self.subMessage()
                var name = ""
                var value: UInt64 = 0
                while let (entryField, entryWireType) = try entry.tag() {
                    switch (entryField, entryWireType) {
                    case (1, 2): name = try entry.string()
                    case (2, 0): value = try entry.varint()
                    default: try entry.skip(entryWireType)
                    }
                }
                a.extraUnits[name] = value
            case (12, 0): a.overageUnits = try self.varint()
            case (13, 0): a.overageChargeAtomic = try self.varint()
            case (14, 2): a.leaseID = try self.string()
            case (15, 0): a.leasedUnits = try self.varint()
            default: try self.skip(wireType)
            }
        }
        return a
    }
}
