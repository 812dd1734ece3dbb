/// What exhausting a metered feature's quota means for a key.
public enum OverQuotaPolicy: Sendable, Hashable, Codable {
    /// Refuse with 429, `Retry-After` until the period ends, and RateLimit headers.
    case block
    /// Refuse with 402 and an x402 challenge for `price`; a settled payment buys `buys`.
    case paymentRequired(price: Money, buys: PaymentGrant)
    /// Serve, count the excess as overage and charge it at `price`; once another charge would pass
    /// `spendCap` (if any), apply `fallback` instead.
    case overage(price: UnitPrice, spendCap: Money?, fallback: OverageFallback)

    /// A short stable name for logs and the usage API: `block`, `payment_required`, `overage`.
    public var name: String {
        switch self {
        case .block: "block"
        case .paymentRequired: "payment_required"
        case .overage: "overage"
        }
    }
}

/// What a settled payment buys.
public enum PaymentGrant: Sendable, Hashable, Codable {
    /// Just this one call; nothing is credited.
    case singleCall
    /// A pack of `units` added to the key's quota for the current period.
    case units(UInt64)
    /// `tokens` added to the key's rate-limit token bucket (may lift it above capacity).
    case bucketRefill(tokens: UInt64)
}

/// What an overage policy does once the spend cap is reached.
public enum OverageFallback: Sendable, Hashable, Codable {
    /// Refuse with 429 until the period ends.
    case block
    /// Refuse with 402 and an x402 challenge.
    case paymentRequired(price: Money, buys: PaymentGrant)

    /// The fallback as a policy of its own.
    public var policy: OverQuotaPolicy {
        switch self {
        case .block: .block
        case .paymentRequired(let price, let buys): .paymentRequired(price: price, buys: buys)
        }
    }
}
