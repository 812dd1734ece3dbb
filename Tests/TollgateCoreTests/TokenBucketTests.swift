import Testing
import TollgateCore

@Suite struct TokenBucketTests {
    let tier = RateTier(name: "burst", capacity: 4, refill: RefillRate(tokens: 4))
    let t0 = Timestamp(seconds: 1_800_000_000)
    let token: Int64 = 1_000_000_000

    @Test func fullBucketRefillsAfterARequest() {
        var b = TokenBucket(tier: tier, at: t0)
        #expect(b.consume(1, at: t0) == .allowed(remainingNanoTokens: 3 * token))
        #expect(b.nanoTokens(at: t0 + .seconds(1)) == 4 * token)
    }

    @Test func paidRefillOfAnEmptyBucket() {
        var b = TokenBucket(tier: tier, tokens: 0, at: t0)
        b.addPaidTokens(4, at: t0)
        #expect(b.consume(1, at: t0) == .allowed(remainingNanoTokens: 3 * token))
    }

    @Test func partialNaturalRefillThenPaidRefillGoesAboveCapacity() {
        var b = TokenBucket(tier: tier, tokens: 0, at: t0)
        let t = t0 + .milliseconds(210)
        #expect(b.nanoTokens(at: t) == 840_000_000)
        b.addPaidTokens(4, at: t)
        #expect(b.nanoTokens == 4_840_000_000)
        #expect(b.consume(1, at: t) == .allowed(remainingNanoTokens: 3_840_000_000))
    }

    @Test func burstTokensNeitherGrowNorGetClipped() {
        var b = TokenBucket(capacityNanoTokens: 4 * token, refill: RefillRate(tokens: 4), nanoTokens: 4_840_000_000, at: t0)
        let t1 = t0 + .seconds(1)
        #expect(b.nanoTokens(at: t1) == 4_840_000_000)
        #expect(b.consume(1, at: t1) == .allowed(remainingNanoTokens: 3_840_000_000))
        #expect(b.nanoTokens(at: t1 + .seconds(1)) == 4 * token)
    }

    @Test func timeGoingBackwardsAddsNothing() {
        var b = TokenBucket(tier: tier, tokens: 0, at: t0)
        #expect(b.consume(1, at: t0 - .seconds(10)) == .limited(retryAfterNanoseconds: 250_000_000))
        #expect(b.nanoTokens(at: t0 - .seconds(100)) == 0)
        // The bucket stays anchored at t0, so moving forward again only refills from t0.
        #expect(b.nanoTokens(at: t0 + .milliseconds(500)) == 2 * token)
    }

    @Test func limitedRequestSaysWhenTokensWillBeThere() {
        var b = TokenBucket(tier: tier, tokens: 0, at: t0)
        let d = b.consume(2, at: t0 + .milliseconds(100))      // holds 0.4, needs 1.6 more = 0.4 s
        #expect(d == .limited(retryAfterNanoseconds: 400_000_000))
        #expect(d.retryAfterSeconds == 1)
        #expect(b.consume(2, at: t0 + .milliseconds(500)).isAllowed)
        // More than capacity can never come from natural refill.
        #expect(b.consume(5, at: t0 + .seconds(60)) == .limited(retryAfterNanoseconds: nil))
    }

    @Test func rationalRatesDoNotDrift() {
        // 1 token every 3 seconds: 1/3 nano-token per nanosecond, read every 7 ns for a while.
        let slow = RateTier(capacity: 10, refill: RefillRate(tokens: 1, perSeconds: 3))
        var a = TokenBucket(tier: slow, tokens: 0, at: t0)
        var t = t0
        for _ in 0..<10_000 {
            t = t.advanced(byNanoseconds: 7)
            a.advance(to: t)
        }
        // 70 000 ns elapsed → exactly floor(70 000 / 3) nano-tokens, as if read once.
        #expect(a.nanoTokens == 23_333)
        var once = TokenBucket(tier: slow, tokens: 0, at: t0)
        once.advance(to: t)
        #expect(once.nanoTokens == a.nanoTokens)
        // Waiting for one whole token from empty takes exactly 3 s.
        #expect(TokenBucket(tier: slow, tokens: 0, at: t0).nanosecondsUntil(nanoTokens: token) == 3_000_000_000)
    }

    @Test func admitMapsToDecisionsAndHeaders() {
        var b = TokenBucket(tier: tier, tokens: 1, at: t0)
        let ok = b.admit(tier: tier, at: t0)
        #expect(ok.allowed && ok.outcome == .serve && ok.remaining == 0)
        #expect(ok.headers.policyFieldValue == "\"burst\";q=4;w=1")
        #expect(ok.headers.limitFieldValue == "\"burst\";r=0;t=1")
        let limited = b.admit(tier: tier, at: t0 + .milliseconds(100))
        #expect(limited.outcome == .block(retryAfterSeconds: 1))
        #expect(limited.retryAfterSeconds == 1)
        let paid = RateTier(name: "burst", capacity: 4, refill: RefillRate(tokens: 4),
                            paidRefill: PaidRefill(price: Money(atomicUnits: 10_000, asset: "USDC"), tokens: 4))
        var c = TokenBucket(tier: paid, tokens: 0, at: t0)
        #expect(c.admit(tier: paid, at: t0).outcome == .paymentRequired(price: Money(atomicUnits: 10_000, asset: "USDC"), buys: .bucketRefill(tokens: 4)))
    }
}
