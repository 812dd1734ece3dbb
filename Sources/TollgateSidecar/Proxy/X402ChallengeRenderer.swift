import TollgateCore
import TollgateX402

/// Renders 402 challenges from the deployment's x402 settings: the price is the server's own
/// (from the key's plan), never anything the client sent.
///
/// Threading: immutable, safe anywhere. Rendering costs a JSON encode, only on the 402 path.
public struct X402ChallengeRenderer: PaymentChallengeRenderer {
    private let settings: X402Settings

    /// A renderer for payments to `settings.payTo` in `settings.asset` on `settings.network`.
    public init(settings: X402Settings) {
        self.settings = settings
    }

    public func challenge(price: Money, buys: PaymentGrant, uri: String, reason: String) -> PaymentChallenge {
        let description: String
        switch buys {
        case .singleCall: description = "one call"
        case .units(let units): description = "\(units) units added to this period's quota"
        case .bucketRefill(let tokens): description = "\(tokens) rate-limit tokens"
        }
        let resource = X402ResourceInfo(url: uri, description: description, mimeType: "application/json")
        do {
            let rendered = try X402Challenge(settings: settings, price: price, resource: resource, error: reason).render()
            return PaymentChallenge(headerValue: rendered.paymentRequiredHeader, body: rendered.body)
        } catch {
            // Settings were validated at load, so this is a bug; still answer 402, never serve.
            return PaymentChallenge(headerValue: "", body: Array(#"{"x402Version":1,"error":"challenge_unavailable","accepts":[]}"#.utf8))
        }
    }
}
