extension TokenBucket {
    /// Takes `tokens` for a request under `tier` and turns the result into a `QuotaDecision`.
    ///
    /// A limited request is refused with 402 when the tier sells refills, otherwise with 429 and a
    /// `Retry-After` of when natural refill will have the tokens. The headers report the bucket as a
    /// policy of `capacity` per the time a full refill takes, and `t` matches `Retry-After` when refused
    /// (as the draft asks), else the seconds until the bucket is full again.
    public mutating func admit(_ tokens: UInt64 = 1, tier: RateTier, at now: Timestamp) -> QuotaDecision {
        let result = consume(tokens, at: now)
        let whole = UInt64(Swift.max(0, nanoTokens) / Self.nanoTokensPerToken)
        let fillWindow = tier.refill.tokens == 0
            ? nil : Self.ceilDiv(tier.capacity.multipliedReportingOverflow(by: tier.refill.perSeconds), tier.refill.tokens)
        func headers(reset: UInt64) -> RateLimitHeaders {
            RateLimitHeaders(policies: [.init(name: tier.name, quota: tier.capacity, windowSeconds: fillWindow)],
                             limits: [.init(name: tier.name, remaining: whole, resetSeconds: reset)])
        }
        switch result {
        case .allowed:
            let untilFull = nanosecondsUntil(nanoTokens: capacityNanoTokens).map { Timestamp.epoch.secondsRoundedUp(until: Timestamp(nanoseconds: $0)) } ?? 0
            return QuotaDecision(allowed: true, remaining: whole, outcome: .serve, headers: headers(reset: untilFull))
        case .limited:
            let retry = result.retryAfterSeconds
            if let paid = tier.paidRefill {
                let policy = OverQuotaPolicy.paymentRequired(price: paid.price, buys: .bucketRefill(tokens: paid.tokens))
                return QuotaDecision(allowed: false, remaining: whole, policyApplied: policy,
                                     outcome: .paymentRequired(price: paid.price, buys: .bucketRefill(tokens: paid.tokens)),
                                     retryAfterSeconds: retry, headers: headers(reset: retry ?? 0))
            }
            return QuotaDecision(allowed: false, remaining: whole, policyApplied: .block, outcome: .block(retryAfterSeconds: retry),
                                 retryAfterSeconds: retry, headers: headers(reset: retry ?? 0))
        }
    }

    private static func ceilDiv(_ a: (partialValue: UInt64, overflow: Bool), _ b: UInt64) -> UInt64? {
        guard !a.overflow, b > 0 else { return nil }
        return a.partialValue / b + (a.partialValue % b == 0 ? 0 : 1)
    }
}
