// Foundation only for JSONEncoder in this Codable check; TollgateCore itself never imports it.
import Foundation
import Testing
import TollgateCore

@Suite struct PlanTests {
    let usdc = "USDC"

    var pro: Plan {
        Plan(
            name: "pro",
            features: [
                .apiCall: .metered(MeteredFeature(limit: 10_000, unit: "request", reset: .day)),
                "tokens": .metered(MeteredFeature(limit: 1_000_000, unit: "token", reset: .billingCycle, quotaMode: .optimistic,
                                                  whenCollectorUnreachable: .failOpen)),
                "export": .boolean(enabled: false),
            ],
            rateTier: RateTier(name: "burst", capacity: 4, refill: RefillRate(tokens: 4))
        )
    }

    @Test func resolvingWithoutOverridesKeepsThePlan() {
        let e = pro.resolved()
        #expect(e.planName == "pro")
        #expect(e.rateTier == RateTier(name: "burst", capacity: 4, refill: RefillRate(tokens: 4)))
        #expect(e.feature(.apiCall) == .metered(EffectiveMeteredFeature(name: .apiCall, limit: 10_000, unit: "request", interval: .day)))
        #expect(e.feature("export") == .boolean(enabled: false))
        // No anchor: a billing cycle falls back to the calendar month.
        guard case .metered(let tokens) = e.feature("tokens") else { Issue.record("tokens not metered"); return }
        #expect(tokens.interval == .month)
        #expect(tokens.quotaMode == .optimistic)
        #expect(tokens.whenCollectorUnreachable == .failOpen)
    }

    @Test func overridesReplaceLimitPolicyTierSwitchAndAnchor() {
        let anchor = UTCDateTime(year: 2026, month: 1, day: 31, hour: 12).timestamp
        let price = Money(atomicUnits: 10_000, asset: usdc)
        let overrides = KeyOverrides(
            limits: [.apiCall: 20_000],
            policies: [.apiCall: .paymentRequired(price: price, buys: .units(100))],
            enabled: ["export": true],
            rateTier: RateTier(capacity: 100, refill: RefillRate(tokens: 50)),
            billingAnchor: anchor
        )
        let e = pro.resolved(with: overrides)
        guard case .metered(let api) = e.feature(.apiCall), case .metered(let tokens) = e.feature("tokens") else {
            Issue.record("features missing"); return
        }
        #expect(api.limit == 20_000)
        #expect(api.policy == .paymentRequired(price: price, buys: .units(100)))
        #expect(tokens.interval == .billingCycle(anchor: anchor))
        #expect(e.feature("export") == .boolean(enabled: true))
        #expect(e.rateTier?.capacity == 100)
        #expect(pro.resolved(with: KeyOverrides(removesRateTier: true)).rateTier == nil)
    }

    @Test func unknownOverridesAreListed() {
        let overrides = KeyOverrides(limits: ["tokenz": 5, .apiCall: 1], enabled: [.apiCall: true, "export": true])
        #expect(overrides.unknownFeatures(in: pro) == [.apiCall, "tokenz"])
    }

    @Test func configStringsMapToEnums() {
        #expect(ResetSchedule.allCases.map(\.rawValue) == ["minute", "hour", "day", "week", "month", "billing_cycle"])
        #expect(QuotaMode(rawValue: "optimistic") == .optimistic)
        #expect(CollectorUnreachablePolicy(rawValue: "fail_open") == .failOpen)
        #expect(CollectorUnreachablePolicy(rawValue: "fail_closed") == .failClosed)
        #expect(ResetSchedule.billingCycle.interval(billingAnchor: Timestamp(seconds: 5)) == .billingCycle(anchor: Timestamp(seconds: 5)))
        #expect(OverQuotaPolicy.overage(price: UnitPrice(price: .zero()), spendCap: nil, fallback: .block).name == "overage")
        #expect(UnitPrice(price: .zero(), perUnits: 0).perUnits == 1)
        #expect(RefillRate(tokens: 4, perSeconds: 0).perSeconds == 1)
    }

    @Test func planRoundTripsThroughCodable() throws {
        let plan = Plan(name: "p", features: [
            .apiCall: .metered(MeteredFeature(limit: 5, policy: .overage(
                price: UnitPrice(price: Money(atomicUnits: 1500, asset: usdc), perUnits: 1000),
                spendCap: Money(atomicUnits: 5_000_000, asset: usdc), fallback: .block))),
        ])
        let json = try JSONEncoder().encode(plan)
        #expect(try JSONDecoder().decode(Plan.self, from: json) == plan)
    }
}

