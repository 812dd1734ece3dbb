import Foundation
import TollgateWire
import TollgateX402

/// Reading the client's payment header, and writing the `PAYMENT-RESPONSE` header.
extension PaymentCoordinator {
    /// The payment the header carries, with the exact JSON the client sent and, for v2, its
    /// payment-identifier id (or why the extension is unusable).
    func decode(_ request: Tollgate_V1_PaymentRequest) throws(X402Error) -> DecodedPayment {
        // Each step of one payment (lookup, verify and claim, settle or release) carries the same
        // header: it is decoded once. Pure in the bytes and the version, so a memo is exact.
        try decodedPayments.value(for: PaymentHeaderKey(version: request.x402Version, header: request.paymentHeader)) { () throws(X402Error) in
            try self.decodeAfresh(request)
        }
    }

    private func decodeAfresh(_ request: Tollgate_V1_PaymentRequest) throws(X402Error) -> DecodedPayment {
        guard let header = String(bytes: request.paymentHeader, encoding: .utf8) else {
            throw X402Error(.invalidBase64, "the payment header is not text")
        }
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        switch request.x402Version {
        case 1:
            let payload = try decoder.decodeXPayment(headerValue: trimmed)
            return DecodedPayment(version: 1, json: Self.rawJSON(trimmed), authorization: payload.payload.authorization,
                                  accepted: nil, network: payload.network, resourceURL: nil)
        default:
            let payload = try decoder.decodePaymentSignature(headerValue: trimmed)
            var decoded = DecodedPayment(version: 2, json: Self.rawJSON(trimmed), authorization: payload.payload.authorization,
                                         accepted: payload.accepted, network: payload.accepted.network, resourceURL: payload.resource?.url)
            switch X402PaymentIdentifier.extract(payload.extensions) {
            case .absent: break
            case .id(let id): decoded.identifier = id
            case .invalid(let problem): decoded.identifierProblem = problem
            }
            return decoded
        }
    }

    /// The JSON the client sent (the decoder already checked it is valid base64 of valid JSON).
    static func rawJSON(_ header: String) -> [UInt8] {
        Data(base64Encoded: header).map(Array.init) ?? []
    }

    /// Base64 JSON for `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`.
    static func responseHeader(success: Bool, reason: String?, transaction: String, network: String, payer: String) -> String {
        var object: [String: Any] = ["success": success, "transaction": transaction, "network": network, "payer": payer]
        if let reason { object["errorReason"] = reason }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return data.base64EncodedString()
    }
}

/// What a decoded payment depends on: the header's bytes and the x402 version they are read as.
struct PaymentHeaderKey: Hashable, Sendable {
    var version: UInt32
    var header: Data
}
