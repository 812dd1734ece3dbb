/// The one error type of TollgateWire: why a frame was refused.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, coarse enough to label a metric with.
    public enum Code: String, Hashable, Sendable, CaseIterable {
        /// The frame is larger than the configured limit; it was not parsed.
        case oversized
        /// The bytes are not a valid protobuf Envelope (truncated, garbage, bad varint...).
        case malformed
        /// The Envelope decoded but carries no body this build knows (a newer peer's kind).
        case unknownKind
        /// The sender speaks a protocol version this build does not.
        case unsupportedVersion
        /// A multipart message did not have the frame layout its socket kind needs.
        case badFraming
    }

    /// The kind of failure.
    public var code: Code
    /// Human-readable detail, safe to log (never contains payload bytes).
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "WireError(\(code.rawValue)): \(message)" }
}
