import Foundation

/// Decodes x402 messages from untrusted input: header values and response bodies.
///
/// Every refusal is an `X402Error` (oversized, bad base64, bad JSON, wrong version, a malformed
/// field), never a crash; the server answers it with a fresh challenge whose `error` is the
/// error's `x402Reason`. Input over the limit is refused before it is decoded.
///
/// ```swift
/// let decoder = X402Decoder()
/// let payment = try decoder.decodePaymentSignature(headerValue: value)   // PAYMENT-SIGNATURE, v2
/// let legacy = try decoder.decodeXPayment(headerValue: value)            // X-PAYMENT, v1
/// ```
///
/// Threading: a value with no shared state; use one from any thread or task.
public struct X402Decoder: Sendable {
    /// Default bound on a header value's length: an EOA payment is about 1.2 KiB of base64.
    public static let defaultMaxHeaderBytes = 8 * 1024
    /// Default bound on a v1 challenge body.
    public static let defaultMaxBodyBytes = 64 * 1024

    /// Header values longer than this (in UTF-8 bytes) are refused as `oversized`.
    public var maxHeaderBytes: Int
    /// Bodies longer than this are refused as `oversized`.
    public var maxBodyBytes: Int

    /// Creates a decoder with the given limits.
    public init(maxHeaderBytes: Int = X402Decoder.defaultMaxHeaderBytes, maxBodyBytes: Int = X402Decoder.defaultMaxBodyBytes) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// Decodes a `PAYMENT-SIGNATURE` header value: a v2 payment.
    public func decodePaymentSignature(headerValue: String) throws(X402Error) -> X402PaymentPayload {
        try decodePaymentSignature(json: headerJSON(headerValue))
    }

    /// Decodes the JSON of a `PAYMENT-SIGNATURE` header (what ``headerJSON(_:)`` returns).
    public func decodePaymentSignature(json: Data) throws(X402Error) -> X402PaymentPayload {
        var payment = try X402Coding.decode(X402PaymentPayload.self, from: json, userInfo: [X402Coding.extensionsReadFromBytes: true])
        if case .object(let members)? = try X402JSONReader.member("extensions", of: json).get() {
            payment.extensions = members
        }
        return payment
    }

    /// The payment-identifier id a `PAYMENT-SIGNATURE` header value carries, for a caller that
    /// needs only that (the sidecar, on its event loop): `.absent` without reading the payment
    /// when its JSON cannot name the extension (neither its name nor any `\u` escape appears),
    /// else what `X402PaymentIdentifier.extract` finds in its `extensions`, read from the bytes
    /// (`X402JSONReader`), the rest of the payment unchecked: SDK clients echo the extension's
    /// schema from the challenge, so most payments do name it. An unreadable header is `.absent`
    /// here; whoever uses the payment decodes it in full and refuses what is wrong.
    public func paymentIdentifier(inPaymentSignature headerValue: String) -> X402PaymentIdentifier.Extracted {
        guard let json = try? headerJSON(headerValue) else { return .absent }
        guard json.range(of: Data(X402PaymentIdentifier.extensionName.utf8)) != nil || json.range(of: Data("\\u".utf8)) != nil
        else { return .absent }
        guard case .object(let extensions)?? = try? X402JSONReader.member("extensions", of: json).get() else { return .absent }
        return X402PaymentIdentifier.extract(extensions)
    }

    /// Decodes an `X-PAYMENT` header value: a v1 payment.
    public func decodeXPayment(headerValue: String) throws(X402Error) -> X402PaymentPayloadV1 {
        try decodeXPayment(json: headerJSON(headerValue))
    }

    /// Decodes the JSON of an `X-PAYMENT` header (what ``headerJSON(_:)`` returns).
    public func decodeXPayment(json: Data) throws(X402Error) -> X402PaymentPayloadV1 {
        try X402Coding.decode(X402PaymentPayloadV1.self, from: json)
    }

    /// Decodes a `PAYMENT-REQUIRED` header value: a v2 challenge (what a client, or a test, reads).
    public func decodePaymentRequired(headerValue: String) throws(X402Error) -> X402PaymentRequired {
        try X402Coding.decode(X402PaymentRequired.self, from: headerJSON(headerValue))
    }

    /// Decodes a 402 response body: a v1 challenge.
    public func decodePaymentRequiredV1(body: some Collection<UInt8>) throws(X402Error) -> X402PaymentRequiredV1 {
        guard body.count <= maxBodyBytes else {
            throw X402Error(.oversized, "body is \(body.count) bytes, over the limit of \(maxBodyBytes)")
        }
        return try X402Coding.decode(X402PaymentRequiredV1.self, from: Data(body))
    }

    /// The JSON bytes inside a header value: standard base64 (`A-Z a-z 0-9 + /`) with padding to a
    /// multiple of four, nothing else. Surrounding spaces and tabs (HTTP's optional whitespace) are
    /// ignored; the URL-safe alphabet, line breaks and missing padding are refused. Also for a
    /// caller that keeps the exact JSON the client sent (to forward it to a facilitator) and
    /// decodes it with ``decodePaymentSignature(json:)`` or ``decodeXPayment(json:)``.
    public func headerJSON(_ headerValue: String) throws(X402Error) -> Data {
        let bytes = Array(headerValue.utf8)
        guard bytes.count <= maxHeaderBytes else {
            throw X402Error(.oversized, "header value is \(bytes.count) bytes, over the limit of \(maxHeaderBytes)")
        }
        let isOWS = { (byte: UInt8) in byte == 0x20 || byte == 0x09 }
        guard let start = bytes.firstIndex(where: { !isOWS($0) }), let last = bytes.lastIndex(where: { !isOWS($0) }) else {
            throw X402Error(.invalidBase64, "header value is empty")
        }
        let text = bytes[start...last]
        guard text.count % 4 == 0 else {
            throw X402Error(.invalidBase64, "length \(text.count) is not a multiple of 4 (padding is required)")
        }
        let body = text.prefix(while: { $0 != UInt8(ascii: "=") })
        let padding = text.count - body.count
        guard padding <= 2, text.suffix(padding).allSatisfy({ $0 == UInt8(ascii: "=") }),
              body.allSatisfy(Self.isBase64Alphabet)
        else {
            throw X402Error(.invalidBase64, "not standard base64 (alphabet A-Z a-z 0-9 + /, '=' padding only at the end)")
        }
        guard let data = Data(base64Encoded: Data(text)) else {
            throw X402Error(.invalidBase64, "base64 did not decode")
        }
        return data
    }

    private static func isBase64Alphabet(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"): true
        default: false
        }
    }
}
