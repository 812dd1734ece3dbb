import Crypto
import Metrics
import TollgateRedis
import TollgateStore
import TollgateWire

/// The x402 `payment-identifier` extension: a retry with a settled id and the same payment gets the
/// kept response back; the same id with another payment, or while the first attempt is in flight,
/// gets 409. The id is bound to a fingerprint of the key, the route and the exact decoded payment
/// (the extension's specification: a lookup before verifying is unauthenticated, so bind the id
/// to the exact payload).
extension PaymentCoordinator {
    /// What the id holds for this payment (a read; nothing is claimed).
    func identifierState(_ id: String, _ request: Tollgate_V1_PaymentRequest, _ payment: DecodedPayment,
                         on connection: RedisConnection) throws -> IdentifierState {
        let fingerprint = Self.fingerprint(keyID: request.keyID, route: request.route, payment: payment.json)
        return try payments.identifierState(keyID: request.keyID, id: id, fingerprint: fingerprint, on: connection)
    }

    /// The claim on `id` that goes with the payment's nonce claim.
    func identifierClaim(_ id: String, _ request: Tollgate_V1_PaymentRequest, _ payment: DecodedPayment) -> PaymentIdentifierClaim {
        PaymentIdentifierClaim(id: id, fingerprint: Self.fingerprint(keyID: request.keyID, route: request.route, payment: payment.json),
                               ttlSeconds: self.settings.idempotencyTTLSeconds)
    }

    /// The response to keep with a settled id: the one the sidecar sent, unless it is over the bound.
    func keptResponse(_ id: String, _ request: Tollgate_V1_PaymentRequest) -> (id: String, response: [UInt8]?) {
        guard request.hasResponse, let bytes = try? request.response.serializedBytes() as [UInt8],
              bytes.count <= self.settings.idempotencyMaxResponseBytes
        else {
            IdentifierMetrics.count("too_large")
            return (id, nil)
        }
        IdentifierMetrics.count("kept")
        return (id, bytes)
    }

    /// The answer for a known id, or nil when the id is unknown and the payment goes on as new.
    func answer(_ state: IdentifierState, _ result: inout Tollgate_V1_PaymentResult) -> Tollgate_V1_PaymentResult? {
        switch state {
        case .unknown:
            return nil
        case .conflict:
            return self.refuseIdentifier(&result, "payment_identifier_conflict", "this payment identifier was used with another payment", counted: "conflict")
        case .inProgress:
            return self.refuseIdentifier(&result, "payment_in_progress", "a payment with this identifier is still being processed", counted: "in_progress")
        case .settled(let paymentResponse, let kept):
            result.paymentResponseHeader = paymentResponse
            guard let kept, let response = try? Tollgate_V1_PaidResponse(serializedBytes: kept) else {
                return self.refuseIdentifier(&result, "payment_response_not_kept", "this payment settled, but its response was too large to keep", counted: "not_kept")
            }
            IdentifierMetrics.count("replayed")
            self.logger.info("payment replayed", metadata: ["tollgate.payer": "\(result.payer)"])
            result.success = true
            result.replay = response
            return result
        }
    }

    /// Refuses for a reason of the identifier (not a payment failure: the facilitator was not asked).
    func refuseIdentifier(_ result: inout Tollgate_V1_PaymentResult, _ reason: String, _ message: String, counted: String) -> Tollgate_V1_PaymentResult {
        IdentifierMetrics.count(counted)
        self.logger.info("payment identifier refused", metadata: ["tollgate.reason": "\(reason)", "tollgate.detail": "\(message)"])
        result.success = false
        result.errorReason = reason
        return result
    }

    /// Hex SHA-256 of the key id, the route and the decoded payment, each length-prefixed.
    static func fingerprint(keyID: String, route: String, payment: [UInt8]) -> String {
        var hasher = SHA256()
        for part in [Array(keyID.utf8), Array(route.utf8), payment] {
            var length = UInt64(part.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: part)
        }
        return hasher.finalize().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// `tollgate_collector_payment_identifier_total{result}`: what became of payments that carried a
/// payment-identifier id beyond a first, ordinary attempt.
enum IdentifierMetrics {
    static let label = "tollgate_collector_payment_identifier_total"

    static func count(_ result: String) {
        Counter(label: label, dimensions: [("result", result)]).increment()
    }
}
