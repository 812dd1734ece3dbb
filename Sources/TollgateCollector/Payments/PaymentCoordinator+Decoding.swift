import Foundation
import TollgateCore
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
        // The exact JSON the client sent: forwarded to the facilitator as it is.
        let json = try decoder.headerJSON(header)
        switch request.x402Version {
        case 1:
            let payload = try decoder.decodeXPayment(json: json)
            return DecodedPayment(version: 1, json: Array(json), authorization: payload.payload.authorization,
                                  accepted: nil, network: payload.network, resourceURL: nil)
        default:
            let payload = try decoder.decodePaymentSignature(json: json)
            var decoded = DecodedPayment(version: 2, json: Array(json), authorization: payload.payload.authorization,
                                         accepted: payload.accepted, network: payload.accepted.network, resourceURL: payload.resource?.url)
            switch X402PaymentIdentifier.extract(payload.extensions) {
            case .absent: break
            case .id(let id): decoded.identifier = id
            case .invalid(let problem): decoded.identifierProblem = problem
            }
            return decoded
        }
    }

    /// Base64 JSON for `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`.
    /// Written by hand, keys sorted: `JSONSerialization` (through `NSDictionary`) cost a paid call
    /// more than the rest of its settlement's bookkeeping.
    static func responseHeader(success: Bool, reason: String?, transaction: String, network: String, payer: String) -> String {
        var json = "{"
        if let reason { json += #""errorReason":"# + JSONText.quoted(reason) + "," }
        json += #""network":"# + JSONText.quoted(network) + #","payer":"# + JSONText.quoted(payer)
        json += #","success":"# + (success ? "true" : "false") + #","transaction":"# + JSONText.quoted(transaction) + "}"
        return Data(json.utf8).base64EncodedString()
    }
}

/// What a decoded payment depends on: the header's bytes and the x402 version they are read as.
struct PaymentHeaderKey: Hashable, Sendable {
    var version: UInt32
    var header: Data
}
