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
        let envelope: Tollgate_V1_Envelope
        do {
            envelope = try Tollgate_V1_Envelope(serializedBytes: Array(bytes))
        } catch {
            throw WireError(.malformed, "frame of \(bytes.count) bytes is not an Envelope: \(error)")
        }
        // Version 0 is what an empty or foreign frame decodes to; a real sender always stamps it.
        guard envelope.protocolVersion == Self.protocolVersion else {
            throw WireError(.unsupportedVersion, "protocol version \(envelope.protocolVersion), this build speaks \(Self.protocolVersion)")
        }
        // One frame holds exactly one envelope. Protobuf would silently merge two concatenated
        // envelopes (repeated aggregates appended under the second batch's sequence), so a frame
        // must re-encode to its own length: duplicated fields shrink on re-encoding. Unknown
        // fields from newer peers are kept and re-encoded, so they pass.
        guard Self.reencodedCount(envelope) == bytes.count else {
            throw WireError(.malformed, "frame of \(bytes.count) bytes holds more than one envelope or non-canonical fields")
        }
        guard envelope.body != nil else {
            throw WireError(.unknownKind, "envelope carries no body kind this build knows")
        }
        return envelope
    }

    private static func reencodedCount(_ envelope: Tollgate_V1_Envelope) -> Int {
        (try? envelope.serializedBytes() as [UInt8])?.count ?? -1
    }
}
