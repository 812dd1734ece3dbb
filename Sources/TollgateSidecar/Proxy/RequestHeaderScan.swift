import NIOHTTP1

/// What the proxy needs from a request's headers, found in one pass over them.
///
/// Each name is ruled out by its length before any byte compare, so a typical request (a handful
/// of headers) costs a few integer compares per header and no allocation beyond the values kept.
struct RequestHeaderScan {
    var apiKey: String?
    var host: String?
    var contentLength: Int?
    var idempotencyKey: String?
    var forwardedFor: String?
    var hasForwardedProtoOrHost = false
    var hasHopByHop = false
    /// An x402 payment: `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1), as received.
    var payment: (version: UInt32, value: String)?

    init(_ headers: HTTPHeaders, keyHeader: String?) {
        var bearer: String?
        var xAPIKey: String?
        var custom: String?
        let customLength = keyHeader?.utf8.count ?? -1
        for (name, value) in headers {
            let utf8 = name.utf8
            let count = utf8.count
            if count == customLength, let keyHeader, name.caseInsensitiveEquals(keyHeader) {
                custom = value
                continue
            }
            switch count {
            case 4:
                if HopByHop.equalsLowercased(utf8, "host") { self.host = value }
            case 9:
                if HopByHop.equalsLowercased(utf8, "x-api-key") {
                    xAPIKey = value
                } else if HopByHop.equalsLowercased(utf8, "x-payment"), self.payment?.version != 2 {
                    self.payment = (1, value)
                }
            case 13:
                if HopByHop.equalsLowercased(utf8, "authorization") { bearer = Self.bearerToken(value) }
            case 14:
                if HopByHop.equalsLowercased(utf8, "content-length") { self.contentLength = Int(value) }
            case 15:
                if HopByHop.equalsLowercased(utf8, "idempotency-key") {
                    self.idempotencyKey = value
                } else if HopByHop.equalsLowercased(utf8, "x-forwarded-for") {
                    self.forwardedFor = self.forwardedFor.map { $0 + ", " + value } ?? value
                }
            case 16:
                if HopByHop.equalsLowercased(utf8, "x-forwarded-host") { self.hasForwardedProtoOrHost = true }
            case 17:
                if HopByHop.equalsLowercased(utf8, "x-forwarded-proto") {
                    self.hasForwardedProtoOrHost = true
                } else if HopByHop.equalsLowercased(utf8, "payment-signature") {
                    self.payment = (2, value)
                }
            default:
                break
            }
            if !self.hasHopByHop, HopByHop.classify(name) != .keep { self.hasHopByHop = true }
        }
        if let bearer, !bearer.isEmpty {
            self.apiKey = bearer
        } else if let xAPIKey, !xAPIKey.isEmpty {
            self.apiKey = xAPIKey
        } else if let custom, !custom.isEmpty {
            self.apiKey = custom
        }
    }

    /// The token of `Bearer <token>` (scheme case-insensitive), nil for other schemes.
    static func bearerToken(_ value: String) -> String? {
        let utf8 = value.utf8
        guard utf8.count > 7 else { return nil }
        let scheme = value.prefix(7)
        guard scheme.lowercased() == "bearer " else { return nil }
        let token = value.dropFirst(7).trimmingSpaces
        return token.isEmpty ? nil : String(token)
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        guard self.utf8.count == other.utf8.count else { return false }
        for (a, b) in zip(self.utf8, other.utf8) {
            let fa = (a >= 0x41 && a <= 0x5A) ? a | 0x20 : a
            let fb = (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b
            if fa != fb { return false }
        }
        return true
    }
}
