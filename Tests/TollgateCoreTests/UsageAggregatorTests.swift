import TollgateTestSupport
import Testing
import TollgateCore

@Suite struct UsageAggregatorTests {
    let t = utc(2026, 11, 23, 12)

    @Test func statusClasses() {
        #expect(StatusClass(statusCode: 101) == .informational)
        #expect(StatusClass(statusCode: 204) == .success)
        #expect(StatusClass(statusCode: 304) == .redirection)
        #expect(StatusClass(statusCode: 429) == .clientError)
        #expect(StatusClass(statusCode: 503) == .serverError)
        #expect(StatusClass(statusCode: 600) == nil)
        #expect(StatusClass(statusCode: 99) == nil)
    }

    @Test func periodGivenByTheCallerAndAdmitAlone() {
        var agg = UsageAggregator()
        let event = UsageEvent(key: "k1", units: 2, idempotencyKey: "req-1", at: t)
        #expect(agg.record(event, periodID: "m202611") == .recorded)
        #expect(agg.record(event, periodID: "m202611") == .duplicate)
        #expect(agg.count == 1)
        let repeated = agg.admit(event)
        let fresh = agg.admit(UsageEvent(key: "k1", idempotencyKey: "req-2", at: t))
        #expect(!repeated && fresh)
        #expect(agg.count == 1)  // admit only remembers the idempotency key
        let deltas = agg.drain()
        #expect(deltas.map(\.periodID) == ["m202611"] && deltas.first?.units == 2 && agg.count == 0)
    }

    @Test func aggregationSumsExactly() {
        var agg = UsageAggregator()
        var rng = SplitMix64(seed: 99)
        var units: UInt64 = 0, req: UInt64 = 0, resp: UInt64 = 0, latency: UInt64 = 0, maxLatency: UInt64 = 0
        var statuses = StatusCounts()
        for i in 0..<1000 {
            let e = UsageEvent(key: "k1", feature: "tokens", units: UInt64.random(in: 0...5000, using: &rng),
                               statusClass: StatusClass.allCases.randomElement(using: &rng)!,
                               latency: .nanoseconds(Int64.random(in: 0...50_000_000, using: &rng)),
                               requestBytes: UInt64.random(in: 0...10_000, using: &rng), responseBytes: UInt64.random(in: 0...100_000, using: &rng),
                               at: t.advanced(bySeconds: Int64(i)))
            #expect(agg.record(e, interval: .day) == .recorded)
            units += e.units; req += e.requestBytes; resp += e.responseBytes
            let ns = UInt64(e.latency.components.attoseconds / 1_000_000_000)
            latency += ns; maxLatency = max(maxLatency, ns)
            statuses[e.statusClass] += 1
        }
        let deltas = agg.drain()
        #expect(deltas.count == 1)
        let d = deltas[0]
        #expect((d.key, d.feature, d.periodID) == ("k1", "tokens", "d20261123"))
        #expect(d.calls == 1000 && d.units == units && d.requestBytes == req && d.responseBytes == resp)
        #expect(d.latencyTotalNanoseconds == latency && d.latencyMaxNanoseconds == maxLatency)
        #expect(d.statuses == statuses)
        #expect(agg.isEmpty && agg.drain().isEmpty)
    }

    @Test func separatesKeysFeaturesAndPeriodsAtABoundary() {
        var agg = UsageAggregator()
        let midnight = utc(2026, 11, 24)
        _ = agg.record(UsageEvent(key: "k1", units: 2, at: midnight.advanced(byNanoseconds: -1)), interval: .day)
        _ = agg.record(UsageEvent(key: "k1", units: 3, at: midnight), interval: .day)
        _ = agg.record(UsageEvent(key: "k1", units: 4, at: midnight.advanced(bySeconds: 5)), interval: .day)
        _ = agg.record(UsageEvent(key: "k2", units: 7, statusClass: .serverError, at: midnight), interval: .day)
        _ = agg.record(UsageEvent(key: "k1", feature: "tokens", units: 100, at: midnight), interval: .month)
        let d = agg.drain()
        #expect(d.map { "\($0.key)/\($0.feature)/\($0.periodID)=\($0.calls)x\($0.units)" } == [
            "k1/api_call/d20261123=1x2", "k1/api_call/d20261124=2x7", "k1/tokens/m202611=1x100", "k2/api_call/d20261124=1x7",
        ])
        #expect(d[3].statuses == StatusCounts(serverError: 1))
    }

    @Test func duplicateIdempotencyKeysAreDropped() {
        var agg = UsageAggregator(idempotencyWindow: .seconds(60))
        let e = UsageEvent(key: "k1", units: 5, idempotencyKey: "req-1", at: t)
        #expect(agg.record(e, interval: .day) == .recorded)
        #expect(agg.record(e, interval: .day) == .duplicate)
        let drained = agg.drain()
        #expect(drained.map(\.units) == [5])
        // Remembered across drains, scoped per key and feature.
        #expect(agg.record(UsageEvent(key: "k1", units: 5, idempotencyKey: "req-1", at: t + .seconds(30)), interval: .day) == .duplicate)
        #expect(agg.record(UsageEvent(key: "k2", units: 5, idempotencyKey: "req-1", at: t + .seconds(30)), interval: .day) == .recorded)
        #expect(agg.record(UsageEvent(key: "k1", feature: "tokens", units: 5, idempotencyKey: "req-1", at: t), interval: .day) == .recorded)
        // Past the window the key is forgotten.
        #expect(agg.record(UsageEvent(key: "k1", units: 5, idempotencyKey: "req-1", at: t + .seconds(61)), interval: .day) == .recorded)
        // Events without a key are never deduplicated.
        let anon = UsageEvent(key: "k1", at: t + .seconds(62))
        #expect(agg.record(anon, interval: .day) == .recorded && agg.record(anon, interval: .day) == .recorded)
    }

    @Test func idempotencyMemoryIsBounded() {
        var agg = UsageAggregator(idempotencyWindow: .seconds(3600), idempotencyCapacity: 100)
        for i in 0..<10_000 {
            _ = agg.record(UsageEvent(key: "k", idempotencyKey: "r\(i)", at: t), interval: .day)
            #expect(agg.rememberedIdempotencyKeys <= 100)
        }
        // The newest 100 are remembered; older ones have been forgotten.
        #expect(agg.record(UsageEvent(key: "k", idempotencyKey: "r9999", at: t), interval: .day) == .duplicate)
        #expect(agg.record(UsageEvent(key: "k", idempotencyKey: "r9900", at: t), interval: .day) == .duplicate)
        #expect(agg.record(UsageEvent(key: "k", idempotencyKey: "r9899", at: t), interval: .day) == .recorded)
        #expect(agg.drain().first?.calls == 10_001)
    }
}
