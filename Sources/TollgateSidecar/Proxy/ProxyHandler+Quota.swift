import NIOCore
import NIOHTTP1
import TollgateCore

/// Renders the x402 challenge of a 402 response (the `PAYMENT-REQUIRED` header and the v1 body).
///
/// Threading: called on event loops; must not block.
public protocol PaymentChallengeRenderer: Sendable {
    /// The challenge for `price` (which buys `buys`) of the resource at `uri`, with `reason` as the error.
    func challenge(price: Money, buys: PaymentGrant, uri: String, reason: String) -> PaymentChallenge
}

/// A rendered x402 challenge.
public struct PaymentChallenge: Sendable {
    /// The value of `PAYMENT-REQUIRED` (base64 of the v2 JSON).
    public var headerValue: String
    /// The v1 JSON body.
    public var body: [UInt8]

    /// Creates a challenge.
    public init(headerValue: String, body: [UInt8]) {
        self.headerValue = headerValue
        self.body = body
    }
}

extension ProxyHandler {
    /// Carries out the gate's verdict: true to go on to the upstream, false when the proxy answered.
    func admitted(_ verdict: GateVerdict) -> Bool {
        switch verdict {
        case .admit(let admission):
            self.leasedUnits = admission.leasedUnits
            self.rateLimitHeaders = admission.limits
            return true
        case .refuse(let refusal):
            self.respondRefusal(refusal)
            return false
        }
    }

    private func respondRefusal(_ refusal: GateRefusal) {
        var headers = HTTPHeaders()
        if let request = self.gateRequest { self.rateLimitFields.add(refusal.limits, for: request, to: &headers) }
        if let retry = refusal.retryAfterSeconds { headers.add(name: "retry-after", value: String(retry)) }
        let feature = JSONText.quoted(refusal.feature.rawValue)
        switch refusal.reason {
        case .quotaExhausted:
            let retry = refusal.retryAfterSeconds.map { ",\"retry_after\":\($0)" } ?? ""
            self.refuse(.quotaExhausted, status: .tooManyRequests, body: ByteBuffer(string:
                #"{"error":"quota_exhausted","feature":"# + feature + retry + "}"), close: false, headers: headers)
        case .rateLimited:
            let retry = refusal.retryAfterSeconds.map { ",\"retry_after\":\($0)" } ?? ""
            self.refuse(.rateLimited, status: .tooManyRequests, body: ByteBuffer(string:
                #"{"error":"rate_limited","tier":"# + feature + retry + "}"), close: false, headers: headers)
        case .forbidden:
            self.refuse(.forbidden, status: .forbidden, body: ByteBuffer(string:
                #"{"error":"feature_not_enabled","feature":"# + feature + "}"), close: false, headers: headers)
        case .collectorUnreachable:
            self.refuse(.collectorUnreachable, status: .serviceUnavailable, body: ByteBuffer(string:
                #"{"error":"collector_unreachable","message":"quota cannot be checked right now; retry"}"#), close: false, headers: headers)
        case .paymentRequired(let price, let buys):
            if self.startPaidCall(refusal) { return }
            headers.add(name: "cache-control", value: "no-store")
            let reason = refusal.feature.rawValue == "rate" ? "rate limit reached" : "quota exhausted for \(refusal.feature.rawValue)"
            if let renderer = self.shared.challenges {
                let challenge = renderer.challenge(price: price, buys: buys, uri: self.requestURI, reason: reason)
                if !challenge.headerValue.isEmpty { headers.add(name: "payment-required", value: challenge.headerValue) }
                var body = self.context.channel.allocator.buffer(capacity: challenge.body.count)
                body.writeBytes(challenge.body)
                self.refuse(.paymentRequired, status: .paymentRequired, body: body, close: false, headers: headers)
            } else {
                self.refuse(.paymentRequired, status: .paymentRequired, body: ByteBuffer(string:
                    #"{"error":"payment_required","feature":"# + feature + "}"), close: false, headers: headers)
            }
        }
    }

}
