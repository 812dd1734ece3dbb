import Testing
import TollgateCollector
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

/// Usage reports, bills and the overview over a real `redis-server`, written by the same store
/// code ingest and payments use (usage batches, settlement records), read by `RedisUsageReader`.
@Suite("Usage summaries over Redis")
struct UsageSummaryTests {
    static let now = UTCDateTime(year: 2026, month: 11, day: 23, hour: 10).timestamp
    static let day = "d20261123"

    static let plans: [String: Plan] = [
        "metered": Plan(name: "metered", features: [
            .apiCall: .metered(MeteredFeature(limit: 100, reset: .day, policy: .overage(
                price: UnitPrice(price: Money(atomicUnits: 1_500), perUnits: 1_000), spendCap: nil, fallback: .block))),
            "export": .boolean(enabled: true),
        ]),
        "capped": Plan(name: "capped", features: [
            .apiCall: .metered(MeteredFeature(limit: 100, reset: .day, policy: .overage(
                price: UnitPrice(price: Money(atomicUnits: 2_000)), spendCap: Money(atomicUnits: 100_000), fallback: .block))),
        ]),
        "payg": Plan(name: "payg", features: [
            .apiCall: .metered(MeteredFeature(limit: 5, reset: .day, policy: .paymentRequired(price: Money(atomicUnits: 10_000), buys: .units(3)))),
        ]),
    ]

    static func id(_ n: Int) -> String { String(repeating: "\(n)", count: 64) }

    /// Loads three keys, applies their usage and two settlements, and runs `body` with a reader.
    func withUsage(_ body: (RedisUsageReader) async throws -> Void) async throws {
        let server = try RedisServer()
        defer { server.cleanUp() }
        try server.withConnection { connection in
            try KeyRegistry().load(plans: Self.plans, keys: [
                KeyRecord(id: Self.id(1), name: "meter", plan: "metered"),
                KeyRecord(id: Self.id(2), name: "capped", plan: "capped"),
                KeyRecord(id: Self.id(3), name: "payg", plan: "payg"),
            ], on: connection)
            let store = UsageStore(clock: FixedClock(instant: Self.now))
            let used: [(Int, UInt64)] = [(1, 2_101), (2, 160), (3, 13)]
            let batch = UsageBatchRecord(sidecarID: "s1", bootEpoch: 1, sequence: 1, aggregates: used.map { key, units in
                UsageAggregateRecord(keyID: Self.id(key), feature: "api_call", periodID: Self.day,
                                     counters: UsageCounters(calls: units, units: units, statuses: StatusCounts(success: units)))
            })
            _ = try store.apply(batch, on: connection)
            for claim in ["c1", "c2"] {
                try PaymentStore().record(SettlementRecord(
                    keyID: Self.id(3), claimID: claim, payer: "0xabc", amountAtomic: 10_000, asset: "0x036c", network: "eip155:84532",
                    transaction: "0x01", route: "GET /v1/echo", feature: "api_call", periodID: Self.day, creditedUnits: 4, grant: "units:3"
                ), at: Self.now, on: connection)
            }
        }
        let client = RedisClient(configuration: server.configuration)
        do {
            try await body(RedisUsageReader(client: client))
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()
    }

    @Test("the report and the bill read used units, credits and payments from the counter hash")
    func reportAndBill() async throws {
        try await withUsage { reader in
            let currency = BillingCurrency(asset: "0x036c", name: "USDC", decimals: 6)
            let payg = try #require(try await reader.entry(keyID: Self.id(3)))
            let report = try await UsageReport.make(entry: payg, at: Self.now, periodID: nil, reader: reader, currency: currency)
            let feature = try #require(report.features.first)
            #expect((feature.used, feature.credits, feature.included, feature.remaining) == (13, 8, 13, 0))
            #expect((feature.payments, feature.paymentsAmount, feature.percentUsed, feature.level) == (2, 20_000, 100, "alert"))
            #expect((feature.paymentPrice, feature.paymentBuys, feature.overageCharge) == (10_000, "units:3", 0))
            #expect(report.payments == UsageReport.Payments(count: 2, amount: 20_000) && report.currency == currency)

            // 2,001 overage units at 1.5 per unit: ceil(3,001.5) = 3,002, rounded once.
            let meter = try #require(try await reader.entry(keyID: Self.id(1)))
            let bill = try await UsageReport.make(entry: meter, at: Self.now, periodID: Self.day, reader: reader).bill(plan: meter.effectivePlan)
            let line = try #require(bill.lines.first)
            #expect(bill.lines.count == 1 && bill.period == Self.day)  // the boolean feature has no line
            #expect((line.used, line.includedUsed, line.overageUnits, line.unitPrice, line.perUnits, line.charge) == (2_101, 100, 2_001, 1_500, 1_000, 3_002))
            #expect(bill.totals.overageCharge == 3_002 && !bill.totals.overflow)

            // A period id of another interval fits nothing; one of an empty day bills zero.
            await #expect(throws: UsageQueryError.badPeriod("m202611")) {
                try await UsageReport.make(entry: meter, at: Self.now, periodID: "m202611", reader: reader)
            }
            let empty = try await UsageReport.make(entry: meter, at: Self.now, periodID: "d20261101", reader: reader).bill(plan: meter.effectivePlan)
            #expect(empty.lines.first?.used == 0 && empty.totals == BillTotals())
        }
    }

    @Test("the overview lists keys by percent used, filters by plan and threshold, and resolves names")
    func overview() async throws {
        try await withUsage { reader in
            let all = try await UsageOverview.make(reader: reader, query: .init(), at: Self.now)
            #expect(all.keys.map(\.key.name) == ["meter", "capped", "payg"])
            #expect(all.keys.map(\.percentUsed) == [2_101, 160, 100] && all.keysScanned == 3 && all.matched == 3)
            let capped = try #require(all.keys.first { $0.key.name == "capped" })
            #expect((capped.overageCharge, capped.features.first?.capReached, capped.level) == (100_000, true, .alert))

            let over = try await UsageOverview.make(reader: reader, query: .init(overPercent: 150, limit: 1), at: Self.now)
            #expect(over.keys.map(\.key.name) == ["meter"] && over.matched == 2)
            let onPlan = try await UsageOverview.make(reader: reader, query: .init(plan: "payg"), at: Self.now)
            #expect(onPlan.keys.map(\.key.name) == ["payg"] && onPlan.keysScanned == 1)
            await #expect(throws: UsageQueryError.unknownPlan("gold")) {
                try await UsageOverview.make(reader: reader, query: .init(plan: "gold"), at: Self.now)
            }
            #expect(try await reader.resolveKey("capped") == Self.id(2))
            #expect(try await reader.resolveKey(Self.id(9)) == Self.id(9))  // an id is taken as is
            #expect(try await reader.resolveKey("nobody") == nil)
        }
    }
}

/// A clock fixed at one instant.
struct FixedClock: TollgateClock {
    let instant: Timestamp
    func now() -> Timestamp { self.instant }
}
