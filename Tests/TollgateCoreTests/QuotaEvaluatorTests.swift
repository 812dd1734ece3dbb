import TollgateTestSupport
import Testing
import TollgateCore

@Suite struct QuotaEvaluatorTests {
    let now = utc(2026, 11, 23, 23, 0, 0)           // one hour before the day ends
    let usdc = "USDC"

    func feature(_ policy: OverQuotaPolicy, limit: UInt64 = 100) -> EffectiveMeteredFeature {
        EffectiveMeteredFeature(name: .apiCall, limit: limit, interval: .day, policy: policy)
    }

    @Test func withinQuotaServesAndReportsHeaders() {
        let d = QuotaEvaluator.decide(feature(.block), usage: FeatureUsage(used: 57), requested: 1, at: now)
        #expect(d.allowed && d.outcome == .serve && d.remaining == 42 && d.policyApplied == nil)
        #expect(d.headers.policyFieldValue == "\"api_call\";q=100;w=86400")
        #expect(d.headers.limitFieldValue == "\"api_call\";r=42;t=3600")
        #expect(d.headers.fields == [HeaderField(name: "RateLimit-Policy", value: "\"api_call\";q=100;w=86400"),
                                     HeaderField(name: "RateLimit", value: "\"api_call\";r=42;t=3600")])
    }

    @Test func blockRefusesUntilThePeriodEnds() {
        let d = QuotaEvaluator.decide(feature(.block), usage: FeatureUsage(used: 100), requested: 1, at: now + .milliseconds(1))
        #expect(!d.allowed)
        #expect(d.outcome == .block(retryAfterSeconds: 3600))      // 3599.999 s rounds up
        #expect(d.retryAfterSeconds == 3600)
        #expect(d.policyApplied == .block)
        #expect(d.headers.limitFieldValue == "\"api_call\";r=0;t=3600")
        // All or nothing: 3 left, 5 asked.
        #expect(!QuotaEvaluator.decide(feature(.block), usage: FeatureUsage(used: 97), requested: 5, at: now).allowed)
        #expect(QuotaEvaluator.decide(feature(.block), usage: FeatureUsage(used: 100), requested: 0, at: now).allowed)
    }

    @Test func paymentRequiredAsksForThePrice() {
        let price = Money(atomicUnits: 10_000, asset: usdc)
        let policy = OverQuotaPolicy.paymentRequired(price: price, buys: .units(1000))
        let d = QuotaEvaluator.decide(feature(policy), usage: FeatureUsage(used: 100), requested: 1, at: now)
        #expect(!d.allowed)
        #expect(d.outcome == .paymentRequired(price: price, buys: .units(1000)))
        #expect(d.policyApplied == policy)
        #expect(d.retryAfterSeconds == nil)
    }

    @Test func creditsRaiseTheEffectiveLimit() {
        let usage = FeatureUsage(used: 100, credits: 1000)
        let d = QuotaEvaluator.decide(feature(.block), usage: usage, requested: 10, at: now)
        #expect(d.allowed && d.outcome == .serve && d.remaining == 990)
        #expect(d.headers.policyFieldValue == "\"api_call\";q=1100;w=86400")
        #expect(QuotaEvaluator.decide(feature(.block), usage: FeatureUsage(used: 1100, credits: 1000), requested: 1, at: now).allowed == false)
    }

    @Test func overageServesAndChargesExactly() {
        // 1500 atomic units per 1000 units = 1.5 per unit.
        let price = UnitPrice(price: Money(atomicUnits: 1500, asset: usdc), perUnits: 1000)
        let policy = OverQuotaPolicy.overage(price: price, spendCap: nil, fallback: .block)
        let f = feature(policy)
        // 98 used, 5 asked: 2 included, 3 overage → ceil(3 × 1.5) = 5.
        var usage = FeatureUsage(used: 98)
        let d = QuotaEvaluator.decide(f, usage: usage, requested: 5, at: now)
        #expect(d.allowed && d.remaining == 0 && d.policyApplied == policy)
        #expect(d.outcome == .serveOverage(units: 3, charge: Money(atomicUnits: 5, asset: usdc)))
        usage.record(d, requested: 5)
        #expect(usage == FeatureUsage(used: 103, overageUnits: 3, overageCharged: 5))
        // Next unit: cumulative 4 units → ceil(6.0) = 6, so this one costs 1 (rounding caught up).
        let d2 = QuotaEvaluator.decide(f, usage: usage, requested: 1, at: now)
        #expect(d2.outcome == .serveOverage(units: 1, charge: Money(atomicUnits: 1, asset: usdc)))
    }

    @Test func cumulativeRoundingNeverDrifts() {
        let price = UnitPrice(price: Money(atomicUnits: 1500, asset: usdc), perUnits: 1000)
        var rng = SplitMix64(seed: 7)
        var units: UInt64 = 0
        var charged: UInt64 = 0
        for _ in 0..<2000 {
            let step = UInt64.random(in: 1...37, using: &rng)
            charged += price.charge(units: step, after: units)!.atomicUnits
            units += step
            #expect(charged == (units * 1500 + 999) / 1000)
        }
        #expect(price.cumulativeCharge(units: .max) == nil)
        #expect(UnitPrice(price: Money(atomicUnits: 1), perUnits: .max).cumulativeCharge(units: .max) == 1)
    }

    @Test func spendCapSendsTheRequestToTheFallback() {
        let unitPrice = UnitPrice(price: Money(atomicUnits: 100, asset: usdc))
        let cap = Money(atomicUnits: 1000, asset: usdc)
        let blockFallback = feature(.overage(price: unitPrice, spendCap: cap, fallback: .block))
        // 900 charged; one more unit reaches the cap exactly and is served.
        let atCap = QuotaEvaluator.decide(blockFallback, usage: FeatureUsage(used: 109, overageUnits: 9, overageCharged: 900), requested: 1, at: now)
        #expect(atCap.outcome == .serveOverage(units: 1, charge: Money(atomicUnits: 100, asset: usdc)))
        // 1000 charged: the next unit would pass it.
        let over = QuotaEvaluator.decide(blockFallback, usage: FeatureUsage(used: 110, overageUnits: 10, overageCharged: 1000), requested: 1, at: now)
        #expect(!over.allowed && over.spendCapReached)
        #expect(over.outcome == .block(retryAfterSeconds: 3600))
        #expect(over.policyApplied == .block)

        let price = Money(atomicUnits: 50_000, asset: usdc)
        let payFallback = feature(.overage(price: unitPrice, spendCap: cap, fallback: .paymentRequired(price: price, buys: .units(500))))
        let pay = QuotaEvaluator.decide(payFallback, usage: FeatureUsage(used: 110, overageUnits: 10, overageCharged: 1000), requested: 1, at: now)
        #expect(pay.outcome == .paymentRequired(price: price, buys: .units(500)))
        #expect(pay.spendCapReached)
    }

    @Test func booleanFeatures() {
        let off = QuotaEvaluator.decide(.boolean(enabled: false), usage: FeatureUsage(), requested: 1, at: now)
        #expect(!off.allowed && off.outcome == .forbidden && off.headers.isEmpty)
        let on = QuotaEvaluator.decide(.boolean(enabled: true), usage: FeatureUsage(), requested: 1, at: now)
        #expect(on.allowed && on.outcome == .serve && on.remaining == .max)
    }

    @Test func headerValuesAreValidStructuredFields() {
        let h = RateLimitHeaders(policies: [.init(name: "we\"ird\\näme", quota: .max, windowSeconds: nil)],
                                 limits: [.init(name: "a", remaining: 1, resetSeconds: 2), .init(name: "b", remaining: 3, resetSeconds: 4)])
        #expect(h.policyFieldValue == "\"we\\\"ird\\\\n_me\";q=999999999999999")
        #expect(h.limitFieldValue == "\"a\";r=1;t=2, \"b\";r=3;t=4")
        #expect(RateLimitHeaders.none.fields.isEmpty)
    }
}

@Suite("Lease budget")
struct LeaseBudgetTests {
    @Test("block and payment_required lease the limit; a capped overage adds exactly what the cap pays for; uncapped is unbounded")
    func budgets() {
        let price = UnitPrice(price: Money(atomicUnits: 2_000), perUnits: 1)
        func feature(_ policy: OverQuotaPolicy) -> EffectiveMeteredFeature {
            EffectiveMeteredFeature(name: .apiCall, limit: 1_000, interval: .day, policy: policy)
        }
        #expect(feature(.block).leaseBudget == 1_000)
        #expect(feature(.paymentRequired(price: Money(atomicUnits: 10_000), buys: .units(100))).leaseBudget == 1_000)
        #expect(feature(.overage(price: price, spendCap: Money(atomicUnits: 500_000), fallback: .block)).leaseBudget == 1_250)
        #expect(feature(.overage(price: price, spendCap: nil, fallback: .block)).leaseBudget == nil)
        // 1.5 atomic units per unit (3 per 2): a cap of 10 pays for 6 units (charge 9), not 7 (charge 11).
        let fractional = UnitPrice(price: Money(atomicUnits: 3), perUnits: 2)
        #expect(fractional.maxUnits(within: Money(atomicUnits: 10)) == 6)
        #expect(fractional.cumulativeCharge(units: 6)! <= 10 && fractional.cumulativeCharge(units: 7)! > 10)
        #expect(UnitPrice(price: Money(atomicUnits: 0)).maxUnits(within: Money(atomicUnits: 5)) == nil)
    }
}
