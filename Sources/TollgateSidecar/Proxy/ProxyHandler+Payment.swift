import Foundation
import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateWire
import TollgateX402

/// A call paid for with x402: what the proxy holds while the payment is verified, the upstream
/// answers (buffered, not yet shown to the client) and the collector settles.
struct PaidCall {
    var version: UInt32
    var header: String
    var feature: FeatureName
    var head: ProxyRequestHead
    var scan: RequestHeaderScan
    var claimID = ""
    /// The gate's refusal the payment answers (its price, for a fresh challenge if it fails).
    var refusal: GateRefusal?
    /// The upstream's response head, its body (data only: a paid response is held whole and sent
    /// with its length) and the body's size.
    var responseHead: UpstreamResponseHead?
    var body: [ByteBuffer] = []
    var bytes = 0
    /// Set once the claim was settled or released: nothing more to send the collector.
    var finished = false
    /// v2: the payment-identifier extension's id, when the payment carries a well-formed one.
    var identifier: String?

    init(version: UInt32, header: String, feature: FeatureName, head: ProxyRequestHead, scan: RequestHeaderScan) {
        self.version = version
        self.header = header
        self.feature = feature
        self.head = head
        self.scan = scan
        // A malformed extension is left to the collector, which refuses it if the payment is used.
        if version == 2, case .id(let id) = X402Decoder().paymentIdentifier(inPaymentSignature: header) {
            self.identifier = id
        }
    }

    /// Largest response a paid call buffers before the settlement decides whether it is shown.
    static let maxBufferedBytes = 8 << 20
}

extension ProxyHandler {
    /// Takes over a call the gate refused with 402 when the client sent a payment: verify and claim
    /// it through the collector, then forward. Returns false (the caller answers 402) when there is
    /// no payment or no way to take it.
    func startPaidCall(_ refusal: GateRefusal) -> Bool {
        guard var paid = self.paid, let payments = self.shared.payments else { return false }
        paid.feature = refusal.feature
        paid.refusal = refusal
        self.paid = paid
        self.requestPhase = .pending
        let callID = self.callID
        let request = self.paymentRequest(.verifyAndClaim, paid)
        let promise = self.context.eventLoop.makePromise(of: Tollgate_V1_PaymentResult?.self)
        payments.send(request) { promise.succeed($0) }
        promise.futureResult.assumeIsolated().whenSuccess { result in
            guard self.inCall, self.callID == callID, self.requestPhase == .pending, var paid = self.paid else {
                if let result, result.success, !result.hasReplay { Self.release(payments, request, claimID: result.claimID) }
                return
            }
            if let result, self.answerPaymentIdentifier(result) { return }
            guard let result, result.success else {
                self.paid = nil
                self.shared.metrics.countPayment(.refused)
                self.respondPaymentRequired(refusal, reason: result?.errorReason ?? "unexpected_verify_error", settlementHeader: nil)
                return
            }
            paid.claimID = result.claimID
            self.paid = paid
            self.proceed(paid.head, scan: paid.scan)
        }
        return true
    }

    /// Whether upstream parts are being held back for a paid call.
    var isBufferingPaidCall: Bool { self.paid.map { !$0.claimID.isEmpty && !$0.finished } ?? false }

    /// Holds a part of a paid call's response body; false if it outgrew the buffer.
    func bufferPaid(_ buffer: ByteBuffer) -> Bool {
        self.paid?.bytes += buffer.readableBytes
        self.paid?.body.append(buffer)
        return (self.paid?.bytes ?? 0) <= PaidCall.maxBufferedBytes
    }

    /// The upstream finished a paid call: settle it if it succeeded (and was not a HEAD), then show
    /// the response with `PAYMENT-RESPONSE`; otherwise release the claim and show it as it is.
    func finishPaidCall(close: Bool) {
        guard var paid = self.paid, let payments = self.shared.payments, let responseHead = paid.responseHead else { return }
        var request = self.paymentRequest(.unspecified, paid)
        request.claimID = paid.claimID
        paid.finished = true
        self.paid = paid
        guard responseHead.status < 400, paid.head.method != .HEAD else {
            // Nothing is charged for a failed call (or a HEAD): the claim goes back, the answer is shown.
            Self.release(payments, request, claimID: paid.claimID)
            self.shared.metrics.countPayment(.released)
            self.emitPaidResponse(paid, paymentResponse: nil, close: close)
            return
        }
        request.phase = .settle
        if paid.identifier != nil, let response = Self.keptResponse(paid, limit: payments.keptResponseLimit) {
            request.response = response
        }
        let callID = self.callID
        let settle = request
        let promise = self.context.eventLoop.makePromise(of: Tollgate_V1_PaymentResult?.self)
        payments.send(settle) { promise.succeed($0) }
        promise.futureResult.assumeIsolated().whenSuccess { result in
            guard self.inCall, self.callID == callID else { return }
            let responseName = paid.version == 1 ? "x-payment-response" : "payment-response"
            guard let result, result.success else {
                // Not settled (failed, pending, timed out): the content is withheld.
                self.shared.metrics.countPayment(.settlementFailed)
                self.paid = nil
                let refusal = paid.refusal ?? GateRefusal(reason: .quotaExhausted, feature: paid.feature)
                self.respondPaymentRequired(refusal, reason: result?.errorReason ?? "unexpected_settle_error",
                                            settlementHeader: (responseName, result?.paymentResponseHeader ?? ""), close: close)
                return
            }
            self.shared.metrics.countPayment(.settled)
            // The collector leased the paid call's own unit to this sidecar: its usage settles it.
            if result.creditedUnits > 0 { self.leasedUnits = 1 }
            self.emitPaidResponse(paid, paymentResponse: (responseName, result.paymentResponseHeader), close: close)
        }
    }

    /// Writes the buffered response of a paid call and ends the call: the upstream's head with
    /// its length (the body was held whole), and for a settled payment its `PAYMENT-RESPONSE`
    /// and `Cache-Control: private` in place of the upstream's.
    private func emitPaidResponse(_ paid: PaidCall, paymentResponse: (name: String, value: String)?, close: Bool) {
        guard let head = paid.responseHead else { return }
        let replacing = paymentResponse.map { [$0.name, "cache-control"] } ?? []
        var out = self.takeOutBuffer(capacity: head.bytes.readableBytes + 256 + (self.isHEADRequest ? 0 : paid.bytes))
        out.writeResponseHead(head, http10: self.clientVersion != .http1_1, keepFraming: head.framing == .none, replacing: replacing)
        if let paymentResponse {
            out.writeField(paymentResponse.name, paymentResponse.value)
            out.writeStaticString("cache-control: private\r\n")
        }
        if head.framing != .none { out.writeField("content-length", String(paid.bytes)) }
        if close, self.clientVersion == .http1_1 { out.writeStaticString("connection: close\r\n") }
        if !self.rateLimitHeaders.isEmpty, let request = self.gateRequest { self.rateLimitFields.write(self.rateLimitHeaders, for: request, into: &out) }
        out.writeStaticString("\r\n")
        if !self.isHEADRequest {
            for var buffer in paid.body { out.writeBuffer(&buffer) }
        }
        self.responsePhase = .streaming
        self.writeOut(out)
        self.recordUsage(statusCode: head.status)
        self.paid = nil
        self.endCall()
        self.finishResponse(close: close)
        if !close { self.replayPipelined() }
    }

    /// 402 for a payment that was refused or not settled: a fresh challenge with the reason, and the
    /// settlement's `PAYMENT-RESPONSE` (`success:false`) when there was one.
    func respondPaymentRequired(_ refusal: GateRefusal, reason: String, settlementHeader: (String, String)?, close: Bool = false) {
        var headers = HTTPHeaders()
        headers.add(name: "cache-control", value: "no-store")
        if let (name, value) = settlementHeader, !value.isEmpty { headers.add(name: name, value: value) }
        var price: Money?
        var buys = PaymentGrant.singleCall
        if case .paymentRequired(let p, let b) = refusal.reason { (price, buys) = (p, b) }
        if let renderer = self.shared.challenges, let price {
            let challenge = renderer.challenge(price: price, buys: buys, uri: self.requestURI, reason: reason)
            if !challenge.headerValue.isEmpty { headers.add(name: "payment-required", value: challenge.headerValue) }
            var body = self.context.channel.allocator.buffer(capacity: challenge.body.count)
            body.writeBytes(challenge.body)
            self.refuse(.paymentRequired, status: .paymentRequired, body: body, close: close, headers: headers)
        } else {
            self.refuse(.paymentRequired, status: .paymentRequired, body: ByteBuffer(string:
                #"{"x402Version":1,"error":"# + JSONText.quoted(reason) + #","accepts":[]}"#), close: close, headers: headers)
        }
    }

    /// Gives a claim back when the paid call ends without a settlement (the client left, the upstream failed).
    func abandonPaidCall() {
        guard let paid = self.paid, !paid.claimID.isEmpty, !paid.finished, let payments = self.shared.payments else {
            self.paid = nil
            return
        }
        Self.release(payments, self.paymentRequest(.release, paid), claimID: paid.claimID)
        self.shared.metrics.countPayment(.released)
        self.paid = nil
    }

    /// The step `phase` of the current call's payment, for the collector.
    func paymentRequest(_ phase: Tollgate_V1_PaymentRequest.Phase, _ paid: PaidCall) -> Tollgate_V1_PaymentRequest {
        var request = Tollgate_V1_PaymentRequest()
        request.phase = phase
        request.keyID = self.keyID
        request.feature = paid.feature.rawValue
        request.route = self.requestURI
        request.x402Version = paid.version
        request.paymentHeader = Data(paid.header.utf8)
        return request
    }

    static func release(_ payments: PaymentChannel, _ request: Tollgate_V1_PaymentRequest, claimID: String) {
        var request = request
        request.phase = .release
        request.claimID = claimID
        payments.post(request)
    }
}
