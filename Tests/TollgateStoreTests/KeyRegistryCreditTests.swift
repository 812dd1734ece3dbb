import Testing
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

@Suite("KeyRegistry credits against a real redis-server")
struct KeyRegistryCreditTests {
    static let plan = Plan(name: "free", features: [
        .apiCall: .metered(MeteredFeature(limit: 1_000, reset: .day)),
        "tokens": .metered(MeteredFeature(limit: 50_000, unit: "token", reset: .billingCycle)),
        "export": .boolean(enabled: false),
    ])
    /// Billing cycles of key 1 start on the 30th at 10:15:00.
    static let anchor = Timestamp(seconds: 1_793_355_300)  // 2026-10-30T10:15:00Z
    static let key = KeyRecord(id: keyID(1), name: "demo", plan: "free", overrides: KeyOverrides(billingAnchor: anchor))

    func withRegistry(_ body: (KeyRegistry, RedisConnection) throws -> Void) throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let registry = KeyRegistry()
                try registry.load(plans: ["free": Self.plan], keys: [Self.key], on: connection)
                try body(registry, connection)
            }
        }
    }

    func credit(_ connection: RedisConnection, feature: String, period: String) throws -> UInt64? {
        try connection.send("HGET", RedisArgument(RedisKeys.usage(keyID: keyID(1), feature: feature, periodID: period)),
                            RedisArgument(RedisKeys.Field.credit)).int.map(UInt64.init)
    }

    @Test("a credit lands in the credit field of the period the key's plan has now, and bumps the version")
    func credit() throws {
        try withRegistry { registry, connection throws in
            let result = try #require(try registry.credit(500, feature: .apiCall, keyID: keyID(1), at: testNow, on: connection))
            #expect(result == CreditResult(outcome: .applied, feature: .apiCall, periodID: "d20261123", units: 500, totalCredit: 500, version: 2))
            let again = try #require(try registry.credit(250, feature: .apiCall, keyID: keyID(1), at: testNow, on: connection))
            #expect(again.totalCredit == 750 && again.version == 3)
            #expect(try credit(connection, feature: "api_call", period: "d20261123") == 750)

            // The billing-cycle feature uses the key's anchor: the cycle that started on 2026-10-30.
            let tokens = try #require(try registry.credit(10, feature: "tokens", keyID: keyID(1), at: testNow, on: connection))
            #expect(tokens.periodID == "b20261030101500")
            #expect(try credit(connection, feature: "tokens", period: "b20261030101500") == 10)

            // Counters and the feature set expire with the period (day ends in 12 h, + 35 days retention).
            let ttl = try connection.send("TTL", RedisArgument(RedisKeys.usage(keyID: keyID(1), feature: "api_call", periodID: "d20261123"))).int ?? 0
            #expect(ttl > 35 * 86_400 && ttl <= 35 * 86_400 + 12 * 3_600)
            let members = try connection.send("SMEMBERS", RedisArgument(RedisKeys.features(keyID: keyID(1), periodID: "d20261123")))
            #expect(members.array?.compactMap(\.string) == ["api_call"])
            // Usage reads still work with the extra field.
            #expect(try UsageStore().usage(keyID: keyID(1), feature: "api_call", periodID: "d20261123", on: connection).calls == 0)
        }
    }

    @Test("with an idempotency key a credit counts once; the same key for another amount is a conflict")
    func idempotent() throws {
        try withRegistry { registry, connection throws in
            let first = try #require(try registry.credit(500, feature: .apiCall, keyID: keyID(1), idempotencyKey: "ticket-1", at: testNow, on: connection))
            #expect(first.outcome == .applied && first.version == 2)
            let retry = try #require(try registry.credit(500, feature: .apiCall, keyID: keyID(1), idempotencyKey: "ticket-1", at: testNow, on: connection))
            #expect(retry == CreditResult(outcome: .duplicate, feature: .apiCall, periodID: "d20261123", units: 500, totalCredit: 500, version: 2))
            // Even the next day, the retry is recognised and names the period it went to.
            let late = try #require(try registry.credit(500, feature: .apiCall, keyID: keyID(1), idempotencyKey: "ticket-1",
                                                        at: testNow.advanced(bySeconds: 86_400), on: connection))
            #expect(late.outcome == .duplicate && late.periodID == "d20261123")
            let other = try #require(try registry.credit(501, feature: .apiCall, keyID: keyID(1), idempotencyKey: "ticket-1", at: testNow, on: connection))
            #expect(other.outcome == .conflict && other.units == 500)
            #expect(try credit(connection, feature: "api_call", period: "d20261123") == 500)
            #expect(try registry.version(on: connection) == 2)
            let marker = try connection.send("GET", RedisArgument(RedisKeys.creditMarker(keyID: keyID(1), idempotencyKey: "ticket-1")))
            #expect(marker.string == "api_call:500:d20261123")
        }
    }

    @Test("credits are refused for unknown keys, boolean or unknown features, and bad amounts")
    func refused() throws {
        try withRegistry { registry, connection throws in
            #expect(try registry.credit(1, feature: .apiCall, keyID: keyID(9), at: testNow, on: connection) == nil)
            for (units, feature, idempotencyKey) in [(UInt64(1), FeatureName("export"), nil), (1, "nope", nil), (0, .apiCall, nil),
                                                      (KeyRegistry.maxCreditUnits + 1, .apiCall, nil), (1, .apiCall, "bad key")] as [(UInt64, FeatureName, String?)] {
                let error = #expect(throws: StoreError.self) {
                    try registry.credit(units, feature: feature, keyID: keyID(1), idempotencyKey: idempotencyKey, at: testNow, on: connection)
                }
                #expect(error?.code == .invalidInput)
            }
            #expect(try registry.version(on: connection) == 1)
        }
    }
}
