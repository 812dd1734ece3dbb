import Foundation
import Testing
@testable import TollgateCollector
import TollgateConfig
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

/// The registry and usage the dashboard tests read: four keys on a block plan and an overage plan.
enum DashboardFixture {
    /// 2026-11-23T12:00:00Z.
    static let now = Timestamp(seconds: 1_795_435_200)
    static let day = "d20261123"
    static let plans: [String: Plan] = [
        "free": Plan(name: "free", features: [.apiCall: .metered(MeteredFeature(limit: 1_000, reset: .day))]),
        "metered": Plan(name: "metered", features: [
            .apiCall: .metered(MeteredFeature(
                limit: 1_000, reset: .day,
                policy: .overage(price: UnitPrice(price: Money(atomicUnits: 500)), spendCap: nil, fallback: .block)
            )),
            "export": .boolean(enabled: true),
        ]),
    ]
    static let names = ["alpha", "bravo", "charlie", "delta"]
    static func id(_ name: String) -> String { APIKeyHasher.keyID(for: "tg_dash_\(name)_key") }
    static let keys = [
        KeyRecord(id: id("alpha"), name: "alpha", plan: "free"),
        KeyRecord(id: id("bravo"), name: "bravo", plan: "free"),
        KeyRecord(id: id("charlie"), name: "charlie", plan: "metered"),
        KeyRecord(id: id("delta"), name: "delta", plan: "metered"),
    ]

    /// alpha 850 of 1,000 (85%), bravo 100 of 1,000 + 1,000 credited (5%), charlie 1,200 of 1,000
    /// on overage (120%, 200 units at 500), delta idle; three settlements for charlie, one for alpha.
    static func seed(_ server: RedisServer) throws {
        try server.withConnection { connection in
            _ = try KeyRegistry().load(plans: plans, keys: keys, on: connection)
            let calls: [(String, UInt64)] = [("alpha", 850), ("bravo", 100), ("charlie", 1_200)]
            _ = try UsageStore(clock: FixedTime(now)).apply(UsageBatchRecord(
                sidecarID: "sidecar-a", bootEpoch: 1, sequence: 1,
                aggregates: calls.map { name, n in
                    UsageAggregateRecord(keyID: id(name), feature: "api_call", periodID: day, counters: UsageCounters(
                        calls: n, units: n, statuses: StatusCounts(success: n)
                    ))
                }
            ), on: connection)
            _ = try KeyRegistry().credit(1_000, feature: .apiCall, keyID: id("bravo"), at: now, on: connection)
            let ledger: [(String, Int64, UInt64)] = [("charlie", 1_000, 10_000), ("alpha", 2_000, 20_000), ("charlie", 3_000, 30_000), ("charlie", 4_000, 40_000)]
            for (index, (name, offset, amount)) in ledger.enumerated() {
                let record = SettlementRecord(
                    keyID: id(name), claimID: "claim\(index)", payer: "0xabc\(index)", amountAtomic: amount, asset: "0xusdc",
                    network: "eip155:84532", transaction: "0xtx\(index)", route: "GET /hello", feature: "api_call", periodID: day,
                    creditedUnits: 0, grant: "call"
                )
                _ = try PaymentStore().record(record, at: now.advanced(byNanoseconds: offset * 1_000_000), on: connection)
            }
        }
    }
}

/// A clock that always reads one time.
struct FixedTime: TollgateClock {
    let time: Timestamp
    init(_ time: Timestamp) { self.time = time }
    func now() -> Timestamp { self.time }
}

extension CollectorComponentTests {
    @Suite("Dashboard state: real redis-server", .serialized)
    struct DashboardStateTests {
        /// Runs `body` with a seeded Redis and a dashboard source over it.
        func withSource<T: Sendable>(
            fleet: FleetTable = FleetTable(), ingest: IngestRate? = nil, limits: DashboardState.Limits = .init(),
            _ body: (DashboardSource, RedisClient) async throws -> T
        ) async throws -> T {
            try await withRedisServer { server in
                try DashboardFixture.seed(server)
                let client = RedisClient(configuration: server.configuration)
                var source = DashboardSource(
                    collectorID: "collector-test", client: client, fleet: fleet, ingestRate: ingest,
                    asset: .init(name: "USDC", decimals: 6), clock: FixedTime(DashboardFixture.now)
                )
                source.limits = limits
                do {
                    let result = try await body(source, client)
                    await client.shutdown()
                    return result
                } catch {
                    await client.shutdown()
                    throw error
                }
            }
        }

        @Test("keys are ranked by percent used, and each agrees with GET /v1/usage/{key} read the usage API's way")
        func keysAgreeWithUsageAPI() async throws {
            try await withSource { source, client in
                let state = try await source.make()
                #expect(state.keys.map(\.name) == ["charlie", "alpha", "bravo", "delta"])
                #expect(state.keysTotal == 4 && state.keysScanned == 4)
                let reader = RedisUsageReader(client: client)
                for key in state.keys {
                    let entry = try #require(try await reader.entry(keyID: key.id))
                    let report = try await UsageReport.make(entry: entry, at: DashboardFixture.now, periodID: nil, reader: reader)
                    #expect(key == DashboardKeySummary(report), "\(key.name)")
                }
                let charlie = try #require(state.keys.first)
                #expect(charlie.features.count == 1)  // the boolean feature is left out
                let feature = try #require(charlie.features.first)
                #expect(feature.used == 1_200 && feature.included == 1_000 && feature.percent == 120 && charlie.maxPercent == 120)
                #expect(feature.overageUnits == 200 && feature.overageCharge == "100000" && feature.policy == "overage")
                let alpha = state.keys[1].features[0]
                #expect(alpha.percent == 85 && alpha.overageUnits == 0 && alpha.overageCharge == "0")
                let bravo = state.keys[2].features[0]
                #expect(bravo.credits == 1_000 && bravo.included == 2_000 && bravo.percent == 5)
                #expect(state.keys[3].features[0].used == 0 && state.keys[3].maxPercent == 0)
            }
        }

        @Test("the work is bounded: keys shown, keys read and settlements are capped and the state says so")
        func bounded() async throws {
            var limits = DashboardState.Limits()
            limits.maxKeys = 2
            limits.maxSettlements = 3
            limits.chunk = 1  // every key in its own round trip: chunking must not change the answer
            try await withSource(limits: limits) { source, _ in
                let state = try await source.make()
                #expect(state.keys.map(\.name) == ["charlie", "alpha"])
                #expect(state.keysTotal == 4 && state.keysScanned == 4)
                #expect(state.settlements.map(\.amount) == ["40000", "30000", "20000"])
                #expect(state.settlements.map(\.keyName) == ["charlie", "charlie", "alpha"])
            }
            limits = DashboardState.Limits()
            limits.maxKeysScanned = 3
            try await withSource(limits: limits) { source, _ in
                let state = try await source.make()
                #expect(state.keysTotal == 4 && state.keysScanned == 3 && state.keys.count == 3)
            }
        }

        @Test("settlements come newest first across keys, money as strings of atomic units")
        func settlements() async throws {
            try await withSource { source, _ in
                let state = try await source.make()
                #expect(state.settlements.map(\.amount) == ["40000", "30000", "20000", "10000"])
                let newest = try #require(state.settlements.first)
                #expect(newest.keyId == DashboardFixture.id("charlie") && newest.transaction == "0xtx3" && newest.grant == "call")
                #expect(newest.atMs == DashboardFixture.now.milliseconds + 4_000 && newest.at == "2026-11-23T12:00:04Z")
            }
        }

        @Test("sidecars show lag since last heard, unacked batches and spool depth; a silent one is not connected")
        func sidecars() async throws {
            let fleet = FleetTable(staleAfter: .seconds(5))
            let now = DashboardFixture.now
            fleet.record(SidecarStatus(
                sidecarID: "edge-1", bootEpoch: 7, lastSeen: now - .milliseconds(400), spoolRecords: 12, spoolBytes: 4_096,
                unackedBatches: 3, lastUpdateVersion: 1, softwareVersion: "0.1.0"
            ))
            fleet.record(SidecarStatus(
                sidecarID: "edge-2", bootEpoch: 2, lastSeen: now - .seconds(30), spoolRecords: 0, spoolBytes: 0,
                unackedBatches: 0, lastUpdateVersion: 1, softwareVersion: nil
            ))
            let ingest = IngestRate()
            ingest.count(calls: 2_150)
            try await withSource(fleet: fleet, ingest: ingest) { source, _ in
                let state = try await source.make()
                try #require(state.sidecarsTotal == 2 && state.sidecars.count == 2)
                let (one, two) = (state.sidecars[0], state.sidecars[1])
                #expect(one.id == "edge-1" && one.connected && one.lagMs == 400 && one.bootEpoch == 7 && one.version == "0.1.0")
                #expect(one.unackedBatches == 3 && one.spoolRecords == 12 && one.spoolBytes == 4_096)
                #expect(one.lastSeen == "2026-11-23T11:59:59.600000000Z")
                #expect(two.id == "edge-2" && !two.connected && two.lagMs == 30_000 && two.version == nil)
                #expect(state.ingest.callsTotal == 2_150 && state.ingest.batchesTotal == 1)
                #expect(state.collector == "collector-test" && state.asset == .init(name: "USDC", decimals: 6))
            }
        }
    }
}
