import Foundation
import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateWire

/// The x402 `payment-identifier` extension at the proxy: a payment carrying an id is looked up
/// before the quota gate, so a retry of a settled paid call gets its kept response again (no
/// upstream call, no quota unit, no usage), and a conflicting or premature one gets 409. The
/// collector decides; the proxy carries the answer out.
extension ProxyHandler {
    /// Asks the collector what the paid call's id holds; answers the call if the id is known,
    /// otherwise (or if no collector answered) runs `next`, the gate.
    func lookUpPaymentIdentifier(then next: @escaping () -> Void) {
        guard let paid = self.paid, let payments = self.shared.payments else {
            next()
            return
        }
        self.requestPhase = .pending
        let callID = self.callID
        let request = self.paymentRequest(.lookup, paid)
        let promise = self.context.eventLoop.makePromise(of: Tollgate_V1_PaymentResult?.self)
        payments.send(request) { promise.succeed($0) }
        promise.futureResult.assumeIsolated().whenSuccess { result in
            guard self.inCall, self.callID == callID, self.requestPhase == .pending else { return }
            if let result, self.answerPaymentIdentifier(result) { return }
            next()
        }
    }

    /// Carries out the collector's answer about a payment-identifier id: the kept response, or 409.
    /// False when the answer is not about the id (the call goes on as usual).
    func answerPaymentIdentifier(_ result: Tollgate_V1_PaymentResult) -> Bool {
        if result.hasReplay {
            self.replayPaidResponse(result.replay, paymentResponse: result.paymentResponseHeader)
            return true
        }
        let message: String
        let reason: RefusalReason
        switch result.errorReason {
        case RefusalReason.paymentIdentifierConflict.rawValue:
            (reason, message) = (.paymentIdentifierConflict, "this payment identifier was already used with another payment")
        case RefusalReason.paymentInProgress.rawValue:
            (reason, message) = (.paymentInProgress, "a payment with this identifier is still being processed; retry")
        case RefusalReason.paymentResponseNotKept.rawValue:
            (reason, message) = (.paymentResponseNotKept, "this payment settled, but its response was too large to keep for a retry")
        default:
            return false
        }
        self.paid = nil
        var headers = HTTPHeaders()
        headers.add(name: "cache-control", value: "no-store")
        if reason == .paymentInProgress { headers.add(name: "retry-after", value: "1") }
        // A settled payment's PAYMENT-RESPONSE, so the client can reconcile what it paid.
        if !result.paymentResponseHeader.isEmpty { headers.add(name: "payment-response", value: result.paymentResponseHeader) }
        self.refuse(reason, status: .conflict, body: ByteBuffer(string:
            #"{"error":"# + JSONText.quoted(reason.rawValue) + #","message":"# + JSONText.quoted(message) + "}"), close: false, headers: headers)
        return true
    }

    /// Sends a kept paid response again, as it was first sent: nothing is metered or spent.
    private func replayPaidResponse(_ response: Tollgate_V1_PaidResponse, paymentResponse: String) {
        // A HEAD under the id of a paid GET gets the head only (HEAD calls are never settled themselves).
        let isHead = self.paid?.head.method == .HEAD
        self.paid = nil
        self.shared.metrics.countPayment(.replayed)
        var headers = HTTPHeaders()
        for field in response.headers { headers.add(name: field.name, value: field.value) }
        headers.replaceOrAdd(name: "payment-response", value: paymentResponse)
        headers.replaceOrAdd(name: "cache-control", value: "private")
        var body = self.context.channel.allocator.buffer(capacity: isHead ? 0 : response.body.count)
        if !isHead { body.writeBytes(response.body) }
        let status = HTTPResponseStatus(statusCode: Int(clamping: response.status))
        self.respondLocally(status: status, body: body, close: false, headers: headers, json: false)
    }

    /// The paid call's response to keep with its id, or nil when it is over `limit` bytes.
    static func keptResponse(_ paid: PaidCall, limit: Int) -> Tollgate_V1_PaidResponse? {
        guard let head = paid.responseHead else { return nil }
        var size = paid.bytes
        var response = Tollgate_V1_PaidResponse()
        response.status = UInt32(head.status)
        head.forEachField { name, value in
            guard !Self.notKept.contains(name.lowercased()) else { return }
            var field = Tollgate_V1_HeaderField()
            field.name = name
            field.value = value
            size += name.utf8.count + value.utf8.count + 4
            response.headers.append(field)
        }
        guard size <= limit else { return nil }
        var body = Data(capacity: paid.bytes)
        for buffer in paid.body { body.append(contentsOf: buffer.readableBytesView) }
        response.body = body
        return response
    }

    /// Headers that describe one exchange, not the response: framing, the connection, the quota
    /// figures of that moment, and what the replay sets itself.
    private static let notKept: Set<String> = [
        "connection", "content-length", "transfer-encoding", "keep-alive", "ratelimit", "ratelimit-policy",
        "payment-response", "cache-control",
    ]
}
