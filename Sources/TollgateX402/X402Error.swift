/// The one error type of TollgateX402: why an x402 message was refused or could not be built.
///
/// Input from clients is never trusted: every refusal is one of these, never a crash. `message`
/// names the offending field (`accepted.amount`, `payload.authorization.nonce`) and never echoes
/// signatures or other payload bytes, so it is safe to log.
public struct X402Error: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, coarse enough to label a metric with.
    public enum Code: String, Hashable, Sendable, CaseIterable {
        /// The encoded input is longer than the decoder's limit; it was not decoded.
        case oversized
        /// The header value is not standard, padded base64.
        case invalidBase64
        /// The bytes are not UTF-8 JSON of the expected shape (a key missing, a wrong type).
        case invalidJSON
        /// `x402Version` is missing, not an integer, or not the version this message must carry.
        case unsupportedVersion
        /// The shape is right but a value is not: an amount that is not a digit string, a bad address.
        case invalidField
        /// The network is not an EVM network, or is spelled in the other version's form.
        case unsupportedNetwork
        /// The payment uses a scheme other than `exact`.
        case unsupportedScheme
        /// A challenge could not be built from the settings and price given (a programmer or config error).
        case invalidChallenge
    }

    /// The kind of failure.
    public var code: Code
    /// Human-readable detail naming the field, safe to log.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The x402 error reason to put in a fresh challenge's `error` after this refusal, from the
    /// codes x402 facilitators use (`invalid_payload` for anything without a code of its own).
    public var x402Reason: String {
        switch code {
        case .unsupportedVersion: "invalid_x402_version"
        case .unsupportedNetwork: "invalid_network"
        case .unsupportedScheme: "unsupported_scheme"
        case .invalidChallenge: "invalid_payment_requirements"
        case .oversized, .invalidBase64, .invalidJSON, .invalidField: "invalid_payload"
        }
    }

    /// `X402Error(code): message`.
    public var description: String { "X402Error(\(code.rawValue)): \(message)" }
}
