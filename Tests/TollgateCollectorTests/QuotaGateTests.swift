import Foundation
import Testing
import TollgateCollector
import TollgateConfig
import TollgateCore
import TollgateSidecar
import TollgateStore
import TollgateTestSupport
import TollgateWire
import TollgateZeroMQ

/// A sidecar's quota gate against an in-process collector, real ZeroMQ and real Redis.
// Nested in CollectorComponentTests: collector suites run one at a time (shared metrics).
extension CollectorComponentTests {
@Suite("Quota gate with a collector", .serialized)
struct QuotaGateTests {
    /// 2026-11-23T23:00:00Z: an hour before the day ends.
    static let start = Timestamp(seconds: 1_795_474_800)

    static let daily = Plan(name: "daily", features: [
        .apiCall: .metered(MeteredFeature(limit: 50, reset: .day)),
        "export": .boolean(enabled: false),
    ])

    /// Runs `body` with a collector whose only key is on `plan`, and a gate factory; both share `clock`.
    func withGates(
        plan: Plan, clock: TestClock,
        _ body: (_ makeGate: (String) throws -> (QuotaGate, CollectorRequestChannel), _ collector: RunningCollector) async throws -> Void
    ) async throws {
        try await withCollector(configure: { configuration in
            configuration.plans = [plan.name: plan]
            configuration.keys = [KeyRecord(id: TestKeys.freeID, name: "k", plan: plan.name)]
        }, clock: clock) { collector in
            let context = try ZMQContext()
            var channels: [CollectorRequestChannel] = []
            defer {
                for channel in channels { channel.stop() }
                context.close()
            }
            try await body({ sidecar in
                let channel = try CollectorRequestChannel(context: context, endpoints: [collector.endpoint])
                channels.append(channel)
                // A loaded test machine can take longer than the default half second to answer.
                var configuration = QuotaGate.Configuration()
                configuration.requestTimeout = .seconds(5)
                let gate = QuotaGate(configuration: configuration, transport: channel, clock: clock) { (sidecar, 1) }
                return (gate, channel)
            }, collector)
        }
    }

    func decide(_ gate: QuotaGate, _ plan: Plan, _ feature: FeatureName = .apiCall) async -> GateVerdict {
        let request = GateRequest(keyID: TestKeys.freeID, plan: plan.resolved(), feature: feature)
        if let verdict = gate.decide(request) { return verdict }
        return await gate.waitForDecision(request)
    }

    @Test("a key looked up through the directory comes with its compiled plan, the one later reads share, and is gated")
    func lookupCarriesThePlan() async throws {
        let clock = TestClock(Self.start)
        try await withGates(plan: Self.daily, clock: clock) { _, collector in
            let context = try ZMQContext()
            defer { context.close() }
            let channel = try CollectorRequestChannel(context: context, endpoints: [collector.endpoint])
            defer { channel.stop() }
            let cache = KeyCache()
            let directory = KeyDirectory(channel: channel, lookupTimeout: .seconds(5), cache: cache)
            var configuration = QuotaGate.Configuration()
            configuration.requestTimeout = .seconds(5)
            let gate = QuotaGate(configuration: configuration, transport: channel, clock: clock, cache: cache) { ("sc-look", 1) }
            let resolver = CollectorPrincipalResolver(directory: directory, gate: gate)
            let first = try #require(await resolver.resolve(keyID: TestKeys.freeID, feature: .apiCall))
            let plan = try #require(first.gatePlan, "the first lookup's principal has no plan: its call would skip the gate")
            #expect(resolver.cached(keyID: TestKeys.freeID)?.gatePlan === plan)
            let request = GateRequest(keyID: TestKeys.freeID, plan: plan, feature: .apiCall)
            let verdict = try #require(gate.decide(request), "the lookup's lease should have primed the gate")
            #expect(verdict.isAdmitted)
            #expect(cache.count == 1)
        }
    }

    @Test("used up while another sidecar holds units: the next gate refuses at once instead of waiting for them")
    func usedUpDoesNotWaitForOthersUnits() async throws {
        let clock = TestClock(Self.start)
        try await withGates(plan: Self.daily, clock: clock) { makeGate, collector in
            let (a, _) = try makeGate("sc-a")
            let (b, _) = try makeGate("sc-b")
            // a holds a lease and spends one unit of it.
            #expect(await decide(a, Self.daily).isAdmitted)
            // The day's 50 are counted as used elsewhere (another sidecar's report, or a limit
            // lowered below use): a's unspent units could come back, but nothing would be left.
            try collector.redis.withConnection { connection in
                let period = ResetInterval.day.period(containing: Self.start).id
                _ = try UsageStore(clock: clock).apply(UsageBatchRecord(
                    sidecarID: "sc-other", bootEpoch: 1, sequence: 1,
                    aggregates: [UsageAggregateRecord(keyID: TestKeys.freeID, feature: "api_call", periodID: period,
                                                      counters: UsageCounters(calls: 50, units: 50, statuses: StatusCounts(success: 50)))]
                ), on: connection)
            }
            // b's first call asks, is granted nothing, and is told nothing is worth waiting for:
            // it is refused well before its 5 s wait for a's units would end.
            let started = ContinuousClock.now
            guard case .refuse(let refusal) = await decide(b, Self.daily) else {
                Issue.record("expected a refusal")
                return
            }
            #expect(refusal.reason == .quotaExhausted)
            #expect(ContinuousClock.now - started < .seconds(3))
        }
    }

    @Test("two gates admit exactly the limit between them; the first call waits, later ones decide locally")
    func exactlyTheLimit() async throws {
        let clock = TestClock(Self.start)
        try await withGates(plan: Self.daily, clock: clock) { makeGate, collector in
            let (a, _) = try makeGate("sc-a")
            let (b, _) = try makeGate("sc-b")
            var admitted = 0
            var refused: [GateRefusal] = []
            let request = GateRequest(keyID: TestKeys.freeID, plan: Self.daily.resolved(), feature: .apiCall)
            for i in 0..<200 {
                switch await decide(i % 2 == 0 ? a : b, Self.daily) {
                case .admit(let admission):
                    admitted += 1
                    #expect(admission.leasedUnits == 1)
                    #expect(admission.limits.headers(for: request).policyFieldValue == #""api_call";q=50;w=86400"#)
                case .refuse(let refusal):
                    refused.append(refusal)
                }
            }
            #expect(admitted == 50)
            #expect(refused.count == 150, "\(refused.prefix(3))")
            #expect(refused.allSatisfy { $0.reason == .quotaExhausted && $0.retryAfterSeconds == 3_600 }, "\(refused.filter { $0.reason != .quotaExhausted }.prefix(2))")
            #expect(refused.first?.limits.headers(for: request).limitFieldValue == #""api_call";r=0;t=3600"#)
            let outstanding = try collector.redis.withConnection { connection throws in
                try LeaseStore().outstanding(keyID: TestKeys.freeID, feature: "api_call", periodID: "d20261123", on: connection)
            }
            #expect(outstanding.values.reduce(0, +) == 50)
        }
    }

    @Test("rollover: with an injected clock, a new period starts from zero without any job")
    func rollover() async throws {
        let clock = TestClock(Self.start)
        try await withGates(plan: Self.daily, clock: clock) { makeGate, _ in
            let (gate, _) = try makeGate("sc-roll")
            var admitted = 0
            for _ in 0..<60 where await decide(gate, Self.daily).isAdmitted { admitted += 1 }
            #expect(admitted == 50)
            clock.advance(by: .seconds(3_600))  // midnight: d20261124
            admitted = 0
            for _ in 0..<60 where await decide(gate, Self.daily).isAdmitted { admitted += 1 }
            #expect(admitted == 50)
            guard case .refuse(let refusal) = await decide(gate, Self.daily) else {
                Issue.record("the 51st call of the new day was admitted")
                return
            }
            #expect(refusal.retryAfterSeconds == 86_400)
        }
    }

    @Test("a switched-off boolean feature is refused with 403 semantics; units handed back return to the pool")
    func booleanAndReturns() async throws {
        let clock = TestClock(Self.start)
        try await withGates(plan: Self.daily, clock: clock) { makeGate, collector in
            let (gate, _) = try makeGate("sc-ret")
            guard case .refuse(let refusal) = await decide(gate, Self.daily, "export") else {
                Issue.record("export is off in the plan")
                return
            }
            #expect(refusal.reason == .forbidden)
            #expect(await decide(gate, Self.daily).isAdmitted)
            func outstanding() throws -> UInt64 {
                try collector.redis.withConnection { connection throws in
                    try LeaseStore().outstanding(keyID: TestKeys.freeID, feature: "api_call", periodID: "d20261123", on: connection)
                        .values.reduce(0, +)
                }
            }
            let held = try outstanding()
            #expect(held > 1)
            gate.returnAllLeases()
            // The one admitted (unreported) unit stays outstanding; the rest come back.
            for _ in 0..<200 where try outstanding() != 1 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(try outstanding() == 1)
        }
    }

    @Test("with no collector: fail-closed refuses with 503 semantics, fail-open admits without a lease")
    func unreachable() async throws {
        let context = try ZMQContext()
        defer { context.close() }
        let channel = try CollectorRequestChannel(context: context, endpoints: ["tcp://127.0.0.1:\(try FreePort.make())"])
        defer { channel.stop() }
        var configuration = QuotaGate.Configuration()
        configuration.requestTimeout = .milliseconds(100)
        let gate = QuotaGate(configuration: configuration, transport: channel) { ("sc-alone", 1) }
        func plan(_ policy: CollectorUnreachablePolicy) -> Plan {
            Plan(name: policy.rawValue, features: [.apiCall: .metered(MeteredFeature(limit: 10, reset: .day, whenCollectorUnreachable: policy))])
        }
        for (policy, expectAdmitted) in [(CollectorUnreachablePolicy.failClosed, false), (.failOpen, true)] {
            let request = GateRequest(keyID: "key-\(policy.rawValue)", plan: plan(policy).resolved(), feature: .apiCall)
            let first = await gate.waitForDecision(request)
            // Later calls apply the policy at once, without waiting again.
            let second = try #require(gate.decide(request))
            for verdict in [first, second] {
                switch verdict {
                case .admit(let admission):
                    #expect(expectAdmitted && admission.unreachable && admission.leasedUnits == 0)
                case .refuse(let refusal):
                    #expect(!expectAdmitted && refusal.reason == .collectorUnreachable && refusal.retryAfterSeconds == 1)
                }
            }
        }
    }
}
}
