import TollgateCore

/// The x402 challenge of one priced route: what a 402 answer says the request costs and how to pay,
/// in both protocol versions (the v2 `PAYMENT-REQUIRED` header and the v1 JSON body).
///
/// Build one per (plan, feature, route) when the configuration loads, `render()` it once and answer
/// every 402 of that route with the cached bytes: nothing is encoded per request. Everything comes
/// from `X402Settings` (network, asset, payTo, the token's EIP-712 domain) and the price in atomic
/// units; nothing is assumed.
///
/// ```swift
/// let challenge = try X402Challenge(
///     settings: settings, price: Money(atomicUnits: 10_000),   // 0.01 USDC
///     resource: X402ResourceInfo(url: "https://api.example.com/v1/search", description: "Search", mimeType: "application/json"),
///     error: X402Challenge.paymentRequiredReason)
/// let rendered = try challenge.render()   // cache; answer 402 with rendered.headers and rendered.body
/// ```
///
/// Threading: an immutable value; share it, and its rendering, across threads freely.
public struct X402Challenge: Sendable, Hashable {
    /// The `error` of a challenge sent because no payment came with the request.
    public static let paymentRequiredReason = "payment_required"

    /// The v2 challenge, sent base64-encoded in `PAYMENT-REQUIRED`.
    public let paymentRequired: X402PaymentRequired
    /// The v1 challenge, sent as the JSON body.
    public let paymentRequiredV1: X402PaymentRequiredV1

    /// Builds the challenge for `price` (in `settings.asset`'s atomic units) on `resource`.
    ///
    /// When x402 v1 has no name for `settings.network`, the v1 body's `accepts` is empty: v1 clients
    /// cannot pay on that chain and are told so, while v2 clients get the full header.
    /// Throws `invalidChallenge` for a zero price, a price in another asset, an empty resource URL
    /// or token domain, or a non-positive timeout: configuration mistakes, found before any request.
    public init(settings: X402Settings, price: Money, resource: X402ResourceInfo, error: String) throws(X402Error) {
        guard price.atomicUnits > 0 else {
            throw X402Error(.invalidChallenge, "a challenge needs a price above zero")
        }
        if let asset = price.asset, !settings.asset.matches(asset) {
            throw X402Error(.invalidChallenge, "the price is in \(asset), but x402 is paid in \(settings.asset)")
        }
        guard !resource.url.isEmpty else { throw X402Error(.invalidChallenge, "the resource URL is empty") }
        guard !settings.extraName.isEmpty, !settings.extraVersion.isEmpty else {
            throw X402Error(.invalidChallenge, "the token's EIP-712 name and version must be configured")
        }
        guard settings.maxTimeoutSeconds > 0 else {
            throw X402Error(.invalidChallenge, "maxTimeoutSeconds must be at least 1")
        }
        let extra: [String: X402JSONValue] = ["name": .string(settings.extraName), "version": .string(settings.extraVersion)]
        let requirement = X402PaymentRequirements(
            network: settings.network, amount: price.atomicUnits, asset: settings.asset, payTo: settings.payTo,
            maxTimeoutSeconds: settings.maxTimeoutSeconds, extra: extra
        )
        // Every v2 challenge offers the payment-identifier extension: a retry with the same id and
        // payment gets the first answer back (optional for the client).
        paymentRequired = X402PaymentRequired(
            error: error, resource: resource, accepts: [requirement],
            extensions: [X402PaymentIdentifier.extensionName: X402PaymentIdentifier.declaration]
        )
        var acceptsV1: [X402PaymentRequirementsV1] = []
        if settings.network.v1Name != nil {
            acceptsV1.append(try X402PaymentRequirementsV1(
                network: settings.network, maxAmountRequired: price.atomicUnits, resource: resource.url,
                description: resource.description ?? "", mimeType: resource.mimeType ?? "",
                maxTimeoutSeconds: settings.maxTimeoutSeconds, asset: settings.asset, payTo: settings.payTo, extra: extra
            ))
        }
        paymentRequiredV1 = X402PaymentRequiredV1(error: error, accepts: acceptsV1)
    }

    /// The same challenge with another `error`, e.g. a facilitator's reason after a refused payment.
    public func withError(_ error: String) -> X402Challenge {
        X402Challenge(
            paymentRequired: X402PaymentRequired(
                error: error, resource: paymentRequired.resource, accepts: paymentRequired.accepts,
                extensions: paymentRequired.extensions
            ),
            paymentRequiredV1: X402PaymentRequiredV1(error: error, accepts: paymentRequiredV1.accepts)
        )
    }

    private init(paymentRequired: X402PaymentRequired, paymentRequiredV1: X402PaymentRequiredV1) {
        self.paymentRequired = paymentRequired
        self.paymentRequiredV1 = paymentRequiredV1
    }

    /// Encodes both versions once: deterministic JSON (sorted keys) and the base64 header value.
    public func render() throws(X402Error) -> X402RenderedChallenge {
        let v2 = try X402Coding.encode(paymentRequired, what: "the v2 PaymentRequired")
        let v1 = try X402Coding.encode(paymentRequiredV1, what: "the v1 PaymentRequired")
        return X402RenderedChallenge(paymentRequiredHeader: v2.base64EncodedString(), body: Array(v1))
    }
}

/// A challenge encoded for the wire: send status 402, `headers`, and `body`.
///
/// Threading: an immutable value; cache one per route and share it across event loops.
public struct X402RenderedChallenge: Sendable, Hashable {
    /// The HTTP status of every challenge.
    public static let status = 402

    /// The value of the `PAYMENT-REQUIRED` header: standard base64, with padding, of the v2 JSON.
    public let paymentRequiredHeader: String
    /// The response body: the v1 challenge as UTF-8 JSON.
    public let body: [UInt8]

    /// The response headers of a 402: `PAYMENT-REQUIRED`, `Content-Type: application/json`, and
    /// `Cache-Control: no-store` (a challenge must not be cached by intermediaries).
    public var headers: [(name: String, value: String)] {
        [
            (X402Header.paymentRequired, paymentRequiredHeader),
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
        ]
    }
}
