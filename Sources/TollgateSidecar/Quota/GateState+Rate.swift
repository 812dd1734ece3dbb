import TollgateCore

/// The key's rate tier: a token bucket per key, this sidecar's share of the fleet-wide rate.
///
/// Threading: part of `GateState`, only touched under the key cache's lock.
extension GateState {
    enum RateCheck {
        case none
        case allowed(GateLimits.Item)
        case refused(GateRefusal)

        /// The tier's `RateLimit` figures, if the key has a tier.
        var item: GateLimits.Item? {
            switch self {
            case .none: nil
            case .allowed(let item): item
            case .refused(let refusal): refusal.limits.rate
            }
        }
    }

    /// Whether the key's bucket has `units` tokens now (nothing is taken yet). The figures are those
    /// `TokenBucket.admit(_:tier:at:)` reports, without building its header strings.
    mutating func rateCheck(_ position: Int, plan: GatePlan, units: UInt64, at now: Timestamp) -> RateCheck {
        guard let tier = plan.effectivePlan.rateTier else { return noRate(position) }
        let extras = keys[position].extras ?? KeyQuotaExtras()
        keys[position].extras = extras
        let share = Self.share(of: tier, among: UInt64(keys[position].bucketShare))
        if extras.bucketTier != share || extras.bucket == nil {
            let level = extras.bucket.map { min($0.wholeTokens, share.capacity) }
            extras.bucket = TokenBucket(tier: share, tokens: level, at: now)
            extras.bucketTier = share
        }
        guard var probe = extras.bucket else { return .none }
        let result = probe.consume(units, at: now)
        let whole = UInt64(max(0, probe.nanoTokens) / TokenBucket.nanoTokensPerToken)
        let window = share.refill.tokens == 0
            ? nil : Self.ceilDiv(share.capacity.multipliedReportingOverflow(by: share.refill.perSeconds), share.refill.tokens)
        func item(reset: UInt64) -> GateLimits.Item {
            GateLimits.Item(quota: share.capacity, windowSeconds: window, remaining: whole, resetSeconds: reset)
        }
        if result.isAllowed {
            let untilFull = probe.nanosecondsUntil(nanoTokens: probe.capacityNanoTokens)
                .map { Timestamp.epoch.secondsRoundedUp(until: Timestamp(nanoseconds: $0)) } ?? 0
            return .allowed(item(reset: untilFull))
        }
        extras.bucket?.advance(to: now)
        let retry = result.retryAfterSeconds
        let limits = GateLimits(rate: item(reset: retry ?? 0))
        if let paid = share.paidRefill {
            return .refused(GateRefusal(reason: .paymentRequired(price: paid.price, buys: .bucketRefill(tokens: paid.tokens)),
                                        feature: .init(tier.name), retryAfterSeconds: retry, limits: limits))
        }
        return .refused(GateRefusal(reason: .rateLimited, feature: .init(tier.name), retryAfterSeconds: retry, limits: limits))
    }

    /// A key whose plan has no tier: forgets any bucket it had.
    @inline(__always)
    mutating func noRate(_ position: Int) -> RateCheck {
        if let extras = keys[position].extras {
            extras.bucket = nil
            extras.bucketTier = nil
        }
        return .none
    }

    /// Takes `units` tokens from the key's bucket, if it has one.
    mutating func consumeRate(_ position: Int, units: UInt64, at now: Timestamp) {
        guard let extras = keys[position].extras, extras.bucket != nil else { return }
        _ = extras.bucket?.consume(units, at: now)
    }

    /// Adds paid tokens to key `id`'s bucket, if it has one.
    mutating func creditBucket(_ id: CompactKeyID, tokens: UInt64, at now: Timestamp) {
        guard let position = keys.position(of: id), let extras = keys[position].extras, extras.bucket != nil else { return }
        extras.bucket?.addPaidTokens(tokens, at: now)
    }

    /// This sidecar's part of a fleet-wide tier shared by `holders` sidecars: capacity and refill
    /// divided evenly (capacity at least 1), the refill kept exact as a rational rate.
    static func share(of tier: RateTier, among holders: UInt64) -> RateTier {
        guard holders > 1 else { return tier }
        let perSeconds = tier.refill.perSeconds.multipliedReportingOverflow(by: holders)
        return RateTier(
            name: tier.name, capacity: max(1, tier.capacity / holders),
            refill: RefillRate(tokens: tier.refill.tokens, perSeconds: perSeconds.overflow ? .max : perSeconds.partialValue),
            paidRefill: tier.paidRefill
        )
    }

    private static func ceilDiv(_ a: (partialValue: UInt64, overflow: Bool), _ b: UInt64) -> UInt64? {
        guard !a.overflow, b > 0 else { return nil }
        return a.partialValue / b + (a.partialValue % b == 0 ? 0 : 1)
    }
}
