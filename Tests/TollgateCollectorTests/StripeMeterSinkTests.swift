import Foundation
import Logging
import Testing
@testable import TollgateCollector
import TollgateConfig
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

/// The Stripe sink against a real redis-server and the local Stripe stand-in over real HTTP.
@Suite("Stripe meter events", .serialized)
struct StripeMeterSinkTests {
    static let keyA = String(repeating: "a", count: 64)
    static let keyB = String(repeating: "b", count: 64)

    func settings(_ stripe: FakeStripe) -> StripeSettings {
        var settings = StripeSettings(secretKey: FakeStripe.secretKey, meters: [
            "api_call": StripeMeterSettings(eventName: "api_calls", overageEventName: "api_overage"),
        ])
        settings.baseURL = stripe.baseURL
        settings.customers = [Self.keyA: "cus_alpha", Self.keyB: "cus_beta"]
        settings.retryInitialMs = 5
        settings.retryMaxMs = 20
        settings.maxRequestsPerSecond = 1_000
        settings.claimTTLMs = 5_000
        return settings
    }

    func sink(_ settings: StripeSettings, owner: String, redis: RedisServer) -> StripeMeterSink {
        var logger = Logger(label: "stripe-test")
        logger.logLevel = .critical
        return StripeMeterSink(settings: settings, owner: owner, redis: RedisClient(configuration: redis.configuration), logger: logger)
    }

    /// Counts `success` 2xx calls and one 5xx for `key` in one new batch (units = calls).
    func count(_ key: String, success: UInt64, seq: UInt64, on redis: RedisServer) throws {
        let counters = UsageCounters(calls: success + 1, units: success + 1, statuses: StatusCounts(success: success, serverError: 1))
        let batch = UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 1, sequence: seq, aggregates: [
            UsageAggregateRecord(keyID: key, feature: "api_call", periodID: Self.period, counters: counters),
        ])
        _ = try redis.withConnection { try UsageStore().apply(batch, on: $0) }
    }

    /// Today's day period, so the counters and events are current.
    static var period: String {
        let now = Date()
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd"
        return "d" + formatter.string(from: now)
    }

    func withFixture(_ body: (FakeStripe, RedisServer) async throws -> Void) async throws {
        _ = TestMetrics.shared
        let stripe = try await FakeStripe()
        defer { stripe.stop() }
        try await withRedisServer { redis in
            // Both keys on a plan that bills overage past 10 units a day.
            let plan = Plan(name: "over", features: [.apiCall: .metered(MeteredFeature(
                limit: 10, reset: .day, policy: .overage(price: UnitPrice(price: Money(atomicUnits: 1_000)), spendCap: nil, fallback: .block)
            ))])
            _ = try redis.withConnection { connection in
                try KeyRegistry().load(plans: ["over": plan], keys: [
                    KeyRecord(id: Self.keyA, name: "alpha", plan: "over"), KeyRecord(id: Self.keyB, name: "beta", plan: "over"),
                ], on: connection)
            }
            try await body(stripe, redis)
        }
    }

    @Test("a storm of 500s and a 429 is retried with one identifier, and each unit is sent once")
    func retriesKeepTheIdentifier() async throws {
        try await withFixture { stripe, redis in
            try count(Self.keyA, success: 40, seq: 1, on: redis)  // 41 units: 31 past the limit of 10
            let sink = self.sink(self.settings(stripe), owner: "c1", redis: redis)
            defer { Task { await sink.redis.shutdown() } }
            try await stripe.failNext(4, status: 500)
            #expect(await sink.scan())
            await sink.flushPass()
            // The calls meter may have got the whole storm; send whatever is left.
            try await stripe.failNext(1, status: 429, retryAfter: 0)
            try count(Self.keyA, success: 2, seq: 2, on: redis)
            #expect(await sink.scan())
            await sink.flushPass()
            let (accepted, identifiers, _) = try await stripe.events()
            #expect(try await stripe.totals() == ["cus_alpha/api_calls": 42, "cus_alpha/api_overage": 34])
            // Every request beyond the accepted ones repeated an accepted event's identifier.
            let acceptedIDs = Set(accepted.compactMap { $0["identifier"] as? String })
            #expect(accepted.count == 4 && identifiers.count == accepted.count + 5)
            #expect(Set(identifiers) == acceptedIDs)
            #expect(TestMetrics.shared.value(SinkMetricName.stripeRetries, [("status", "500")]) >= 4)
            // Redis agrees: nothing pending, the cursors at the counters.
            let cursors = MeterCursorStore()
            let calls = try redis.withConnection {
                try cursors.read(MeterCursorID(keyID: Self.keyA, feature: "api_call", kind: .successCalls, periodID: Self.period), on: $0)
            }
            #expect(calls.sent == 42 && calls.pending == nil)
        }
    }

    @Test("two flushers on one Redis never send a range twice, and together send every unit")
    func twoFlushers() async throws {
        try await withFixture { stripe, redis in
            let settings = self.settings(stripe)
            let first = self.sink(settings, owner: "c1", redis: redis)
            let second = self.sink(settings, owner: "c2", redis: redis)
            defer { Task { await first.redis.shutdown(); await second.redis.shutdown() } }
            var sent: UInt64 = 0
            for round in 1...12 {
                try count(Self.keyA, success: UInt64(round), seq: UInt64(round), on: redis)
                try count(Self.keyB, success: 3, seq: UInt64(round), on: redis)
                sent += UInt64(round)
                _ = await (first.scan(), second.scan())
                async let a: Void = first.flushPass()
                async let b: Void = second.flushPass()
                _ = await (a, b)
            }
            // A range one flusher still held when the other looked was left to it: flush what remains.
            for flusher in [first, second] {
                _ = await flusher.scan()
                await flusher.flushPass()
            }
            let (accepted, identifiers, duplicates) = try await stripe.events()
            #expect(try await stripe.totals() == [
                "cus_alpha/api_calls": sent, "cus_alpha/api_overage": sent + 12 - 10,
                "cus_beta/api_calls": 36, "cus_beta/api_overage": 48 - 10,
            ])
            #expect(identifiers.count == accepted.count, "a range was sent more than once")
            #expect(duplicates == 0)
        }
    }

    @Test("a range left pending by a crash is sent again with its identifier, and Stripe counts it once")
    func pendingRangeAfterCrash() async throws {
        try await withFixture { stripe, redis in
            try count(Self.keyA, success: 9, seq: 1, on: redis)
            let cursor = MeterCursorID(keyID: Self.keyA, feature: "api_call", kind: .successCalls, periodID: Self.period)
            // The crashed collector cut the range and (maybe) sent it, but never completed it.
            let claim = try redis.withConnection { try MeterCursorStore().claim(cursor, owner: "c1", at: WallClock().now(), on: $0) }
            guard case .send(let range) = claim else {
                Issue.record("expected a range")
                return
            }
            let crashed = self.sink(self.settings(stripe), owner: "c1", redis: redis)
            let event = MeterEvent(eventName: "api_calls", customerID: "cus_alpha", value: range.value, timestamp: range.timestamp, identifier: range.identifier)
            #expect(await crashed.client.send(event) == .accepted)
            await crashed.redis.shutdown()
            // The restarted collector (same id) finds it by its scan and sends it again.
            let restarted = self.sink(self.settings(stripe), owner: "c1", redis: redis)
            defer { Task { await restarted.redis.shutdown() } }
            #expect(await restarted.scan())
            await restarted.flushPass()
            let (accepted, identifiers, duplicates) = try await stripe.events()
            #expect(accepted.count == 1 && identifiers == [range.identifier, range.identifier] && duplicates == 1)
            #expect(try await stripe.totals() == ["cus_alpha/api_calls": 9])
            let stored = try redis.withConnection { try MeterCursorStore().read(cursor, on: $0) }
            #expect(stored.sent == 9 && stored.pending == nil)
        }
    }

    @Test("a 4xx keeps the range pending and counts a failure; a key without a customer is left alone")
    func rejectedAndUnmapped() async throws {
        try await withFixture { stripe, redis in
            var settings = self.settings(stripe)
            settings.customers = [Self.keyA: "not_a_customer"]  // the stand-in answers 400 No such customer
            try count(Self.keyA, success: 5, seq: 1, on: redis)
            try count(Self.keyB, success: 5, seq: 1, on: redis)
            let sink = self.sink(settings, owner: "c1", redis: redis)
            defer { Task { await sink.redis.shutdown() } }
            let failures = TestMetrics.shared.value(SinkMetricName.stripeFailures, [("reason", "rejected")])
            #expect(await sink.scan())
            await sink.flushPass()
            #expect(try await stripe.events().accepted.isEmpty)
            #expect(TestMetrics.shared.value(SinkMetricName.stripeFailures, [("reason", "rejected")]) == failures + 1)
            let (a, b) = try redis.withConnection { connection in
                let cursors = MeterCursorStore()
                return (try cursors.read(MeterCursorID(keyID: Self.keyA, feature: "api_call", kind: .successCalls, periodID: Self.period), on: connection),
                        try cursors.read(MeterCursorID(keyID: Self.keyB, feature: "api_call", kind: .successCalls, periodID: Self.period), on: connection))
            }
            #expect(a.sent == 0 && a.pending?.value == 5)
            #expect(b.sent == 0 && b.pending == nil)
        }
    }

    @Test("the form body is encoded field by field")
    func formBody() {
        let event = MeterEvent(eventName: "api calls", customerID: "cus_1", value: 12, timestamp: 1_795_435_200, identifier: "tg_x&y")
        #expect(event.formBody == "event_name=api%20calls&payload%5Bstripe_customer_id%5D=cus_1&payload%5Bvalue%5D=12&timestamp=1795435200&identifier=tg_x%26y")
    }

    @Test("backoff doubles up to its cap, keeps jitter in 0.5...1, and honours Retry-After")
    func backoff() {
        let policy = StripeRetryPolicy(initial: .milliseconds(100), maximum: .seconds(1))
        #expect(policy.delay(afterAttempt: 1, retryAfter: nil, jitter: 1) == .milliseconds(100))
        #expect(policy.delay(afterAttempt: 3, retryAfter: nil, jitter: 1) == .milliseconds(400))
        #expect(policy.delay(afterAttempt: 30, retryAfter: nil, jitter: 1) == .seconds(1))
        #expect(policy.delay(afterAttempt: 3, retryAfter: nil, jitter: 0.5) == .milliseconds(200))
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(5), jitter: 1) == .seconds(5))
    }
}
