import SwiftProtobuf

/// Encodes and decodes `Tollgate_V1_Envelope` frames, refusing oversized and malformed input.
///
/// A codec is a value: share it freely across threads.
///
/// ```swift
/// let codec = WireCodec(maxFrameBytes: 1 << 20)
/// let bytes = try codec.encode(.usageBatch(batch))
/// let envelope = try codec.decode(bytes)   // throws WireError, never traps
/// ```
public struct WireCodec: Sendable {
    /// The protocol version this build speaks.
    public static let protocolVersion: UInt32 = 1

    /// The default frame limit: far above any batch a sidecar builds, far below what would hurt.
    public static let defaultMaxFrameBytes = 4 << 20

    /// Frames larger than this are refused before parsing.
    public let maxFrameBytes: Int

    /// Creates a codec with a frame size limit.
    public init(maxFrameBytes: Int = WireCodec.defaultMaxFrameBytes) {
        precondition(maxFrameBytes > 0, "maxFrameBytes must be positive")
        self.maxFrameBytes = maxFrameBytes
    }

    /// Serialises an envelope, stamping the protocol version when the caller left it 0.
    public func encode(_ envelope: Tollgate_V1_Envelope) throws(WireError) -> [UInt8] {
        var envelope = envelope
        if envelope.protocolVersion == 0 { envelope.protocolVersion = Self.protocolVersion }
        let bytes: [UInt8]
        do {
            bytes = try envelope.serializedBytes()
        } catch {
            throw WireError(.malformed, "cannot serialise envelope: \(error)")
        }
        guard bytes.count <= maxFrameBytes else {
            throw WireError(.oversized, "envelope of \(bytes.count) bytes exceeds the \(maxFrameBytes)-byte limit")
        }
        return bytes
    }

    /// Wraps a body in an envelope and serialises it.
    public func encode(
        _ body: Tollgate_V1_Envelope.OneOf_Body,
        correlationID: UInt64 = 0,
        sentAtUnixMs: Int64 = 0
    ) throws(WireError) -> [UInt8] {
        var envelope = Tollgate_V1_Envelope()
        envelope.body = body
        envelope.correlationID = correlationID
        envelope.sentAtUnixMs = sentAtUnixMs
        return try encode(envelope)
    }

    /// Parses one frame. Every failure is a `WireError`; nothing here can crash on bad bytes.
    public func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> Tollgate_V1_Envelope {
        guard bytes.count <= maxFrameBytes else {
            throw WireError(.oversized, "frame of \(bytes.count) bytes exceeds the \(maxFrameBytes)-byte limit")
        }
        let frame = Array(bytes)
        let envelope: Tollgate_V1_Envelope
        do {
            envelope = try Tollgate_V1_Envelope(serializedBytes: frame)
        } catch {
            throw WireError(.malformed, "frame of \(bytes.count) bytes is not an Envelope: \(error)")
        }
        // Version 0 is what an empty or foreign frame decodes to; a real sender always stamps it.
        guard envelope.protocolVersion == Self.protocolVersion else {
            throw WireError(.unsupportedVersion, "protocol version \(envelope.protocolVersion), this build speaks \(Self.protocolVersion)")
        }
        // One frame holds exactly one envelope. Protobuf would silently merge two concatenated
        // envelopes (repeated aggregates appended under the second batch's sequence), so no
        // top-level field may repeat and at most one body kind may be present: a second envelope
        // always repeats the version (every sender stamps it) or adds a second body. Unknown
        // fields from newer peers pass when they appear once.
        guard Self.isSingleEnvelope(frame) else {
            throw WireError(.malformed, "frame of \(bytes.count) bytes holds more than one envelope (a top-level field repeats)")
        }
        guard envelope.body != nil else {
            throw WireError(.unknownKind, "envelope carries no body kind this build knows")
        }
        return envelope
    }

    /// Whether every top-level field of `frame` appears once and at most one of them is a body
    /// kind (field number 10 and up). Walks the wire format only: tags and lengths, no decoding.
    static func isSingleEnvelope(_ bytes: [UInt8]) -> Bool {
        var seen: [UInt64] = []
        var bodies = 0
        var index = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.count, shift < 64 {
                let byte = bytes[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while index < bytes.count {
            guard let tag = varint() else { return false }
            let field = tag >> 3
            guard !seen.contains(field) else { return false }
            seen.append(field)
            if field >= Self.firstBodyField {
                bodies += 1
                guard bodies == 1 else { return false }
            }
            switch tag & 7 {
            case 0: guard varint() != nil else { return false }
            case 1: index += 8
            case 2:
                guard let length = varint(), length <= UInt64(bytes.count - index) else { return false }
                index += Int(length)
            case 5: index += 4
            default: return false  // groups are not part of this schema
            }
            guard index <= bytes.count else { return false }
        }
        return true
    }

    /// The lowest field number of `Envelope.body`'s kinds; 1 to 3 are the envelope's own fields.
    static let firstBodyField: UInt64 = 10
}
