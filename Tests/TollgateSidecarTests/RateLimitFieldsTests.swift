import NIOHTTP1
import Testing
import TollgateCore
@testable import TollgateSidecar

/// `RateLimitFields` writes exactly what `RateLimitHeaders` (the reference, in TollgateCore) does.
@Suite("RateLimitFields: the RateLimit fields without the reference's arrays")
struct RateLimitFieldsTests {
    static let plan = Plan(name: "pro", features: [
        .apiCall: .metered(MeteredFeature(limit: 1_000, reset: .day)),
        "odd \"name\"\\é": .metered(MeteredFeature(limit: 5, reset: .month)),
    ], rateTier: RateTier(name: "burst", capacity: 20, refill: RefillRate(tokens: 10)))

    static let figures: [GateLimits] = [
        GateLimits(quota: .init(quota: 1_000, windowSeconds: 86_400, remaining: 999, resetSeconds: 3_600)),
        GateLimits(rate: .init(quota: 20, windowSeconds: nil, remaining: 0, resetSeconds: 1)),
        GateLimits(quota: .init(quota: 1_000, windowSeconds: nil, remaining: 0, resetSeconds: 7),
                   rate: .init(quota: 20, windowSeconds: 2, remaining: 19, resetSeconds: 0)),
        GateLimits(quota: .init(quota: .max, windowSeconds: .max, remaining: .max, resetSeconds: 1_000_000_000_000_000)),
    ]

    @Test("every combination of quota and rate, windows and clamped numbers, and odd names, matches the reference")
    func matchesTheReference() {
        var fields = RateLimitFields()
        for feature in [FeatureName.apiCall, "odd \"name\"\\é"] {
            let request = GateRequest(keyID: "k", plan: Self.plan.resolved(), feature: feature)
            for limits in Self.figures + Self.figures.reversed() {
                var headers = HTTPHeaders()
                fields.add(limits, for: request, to: &headers)
                let reference = limits.headers(for: request)
                #expect(headers.first(name: "ratelimit-policy") == reference.policyFieldValue)
                #expect(headers.first(name: "ratelimit") == reference.limitFieldValue)
                #expect(headers.count == 2)
            }
        }
    }

    @Test("no figures, no fields")
    func nothing() {
        var fields = RateLimitFields()
        var headers = HTTPHeaders()
        fields.add(.none, for: GateRequest(keyID: "k", plan: Self.plan.resolved(), feature: .apiCall), to: &headers)
        #expect(headers.isEmpty)
    }
}
