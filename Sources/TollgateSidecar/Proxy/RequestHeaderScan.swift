/// What the proxy needs from a request's fields, taken line by line as the head is parsed.
///
/// Each name is ruled out by its length before any byte compare, so a typical request (a handful
/// of fields) costs a few integer compares per field; a value becomes a string only when the
/// proxy uses it (`Host`, `Idempotency-Key`, `X-Forwarded-For`, a payment); the API key is kept
/// as where it is in the head (`ProxyRequestHead.apiKey` makes the string when it is needed).
struct RequestHeaderScan {
    /// Where the API key is in the head's bytes: `Bearer`, else `X-API-Key`, else the configured header.
    var apiKeyRange: Range<Int>?
    var host: String?
    var idempotencyKey: String?
    var forwardedFor: String?
    /// The body is chunked (`Transfer-Encoding` ends in `chunked`).
    var chunked = false
    var sawTransferEncoding = false
    /// An x402 payment: `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1), as received.
    var payment: (version: UInt32, value: String)?
    /// Lowercased names the request's `Connection` lists (fields for this hop only).
    var connectionNames: [String] = []
    var closeToken = false
    var keepAliveToken = false

    private var bearer: Range<Int>?
    private var xAPIKey: Range<Int>?
    private var custom: Range<Int>?

    /// What the head does with a field line.
    enum Disposition { case forward, drop }

    /// Takes one field; `valueRange` is where `value` is in the head. `keyHeader` is the configured
    /// key header, lowercased, if any.
    mutating func take(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, valueRange: Range<Int>, keyHeader: [UInt8]?) -> Disposition {
        if let keyHeader, name.count == keyHeader.count, Self.equalsLowercased(name, keyHeader) {
            self.custom = valueRange
            return .forward
        }
        switch name.count {
        case 2:
            if Self.equals(name, "te") { return .drop }
        case 4:
            if Self.equals(name, "host") { self.host = String(decoding: value, as: UTF8.self) }
        case 7:
            if Self.equals(name, "trailer") || Self.equals(name, "upgrade") { return .drop }
        case 9:
            if Self.equals(name, "x-api-key") {
                self.xAPIKey = valueRange
            } else if Self.equals(name, "x-payment") {
                if self.payment?.version != 2 { self.payment = (1, String(decoding: value, as: UTF8.self)) }
                return .drop
            }
        case 10:
            if Self.equals(name, "connection") {
                FieldBytes.forEachToken(value) { token in
                    if FieldBytes.equalsLowercased(token, "close") {
                        self.closeToken = true
                    } else if FieldBytes.equalsLowercased(token, "keep-alive") {
                        self.keepAliveToken = true
                    } else {
                        self.connectionNames.append(FieldBytes.lowercased(token))
                    }
                }
                return .drop
            }
            if Self.equals(name, "keep-alive") { return .drop }
        case 13:
            if Self.equals(name, "authorization") { self.bearer = Self.bearerToken(value).map { (valueRange.lowerBound + $0.lowerBound)..<valueRange.upperBound } }
        case 15:
            if Self.equals(name, "idempotency-key") {
                self.idempotencyKey = String(decoding: value, as: UTF8.self)
            } else if Self.equals(name, "x-forwarded-for") {
                let value = String(decoding: value, as: UTF8.self)
                self.forwardedFor = self.forwardedFor.map { $0 + ", " + value } ?? value
                return .drop
            }
        case 16:
            if Self.equals(name, "x-forwarded-host") { return .drop }
        case 17:
            if Self.equals(name, "transfer-encoding") {
                self.sawTransferEncoding = true
                self.chunked = FieldBytes.endsWithChunked(value)
                return .drop
            }
            if Self.equals(name, "x-forwarded-proto") { return .drop }
            if Self.equals(name, "payment-signature") {
                self.payment = (2, String(decoding: value, as: UTF8.self))
                return .drop
            }
        default:
            break
        }
        return name.count > 6 && FieldBytes.hasProxyPrefix(name) ? .drop : .forward
    }

    /// Settles which key the request carries: `Bearer`, then `X-API-Key`, then the configured header.
    mutating func finish() {
        if let bearer = self.bearer, !bearer.isEmpty {
            self.apiKeyRange = bearer
        } else if let xAPIKey = self.xAPIKey, !xAPIKey.isEmpty {
            self.apiKeyRange = xAPIKey
        } else if let custom = self.custom, !custom.isEmpty {
            self.apiKeyRange = custom
        }
    }

    @inline(__always)
    static func equals(_ name: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        FieldBytes.equalsLowercased(name, lower)
    }

    static func equalsLowercased(_ name: UnsafeRawBufferPointer, _ lower: [UInt8]) -> Bool {
        guard name.count == lower.count else { return false }
        for (byte, expected) in zip(name, lower) where ((byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte) != expected {
            return false
        }
        return true
    }

    /// Where the token of `Bearer <token>` (scheme case-insensitive) is in `value`; nil for other schemes.
    static func bearerToken(_ value: UnsafeRawBufferPointer) -> Range<Int>? {
        guard value.count > 7, FieldBytes.equalsLowercased(UnsafeRawBufferPointer(rebasing: value[0..<7]), "bearer ") else { return nil }
        var start = 7
        while start < value.count, value[start] == UInt8(ascii: " ") || value[start] == UInt8(ascii: "\t") { start += 1 }
        guard start < value.count else { return nil }
        return start..<value.count
    }
}
