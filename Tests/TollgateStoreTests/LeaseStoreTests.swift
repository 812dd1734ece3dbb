import Testing
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

/// The lease model against a real redis-server: grants never exceed what nobody holds, usage
/// settles leases in the same script that counts it, returns and expiry give units back.
@Suite("Leases in Redis", .serialized)
struct LeaseStoreTests {
    let period = try! ResetInterval.day.period(id: "d20261123")

    func request(_ key: String, holder: String, wants: UInt64, budget: UInt64? = 1_000) -> LeaseGrantRequest {
        LeaseGrantRequest(keyID: key, feature: "api_call", period: period, holder: holder, requested: wants, budget: budget)
    }

    /// Applies `calls` calls (all of them leased) from `sidecar`/`epoch` as batch `sequence`.
    func spend(_ connection: RedisConnection, _ key: String, sidecar: String, epoch: UInt64, sequence: UInt64, calls: UInt64, leased: UInt64) throws {
        var record = aggregate(key, calls: calls)
        record.leasedUnits = leased
        _ = try makeStore().apply(UsageBatchRecord(sidecarID: sidecar, bootEpoch: epoch, sequence: sequence, aggregates: [record]), on: connection)
    }

    @Test("grants shrink as the pool empties and never exceed it; the last units go one by one")
    func grantsShrink() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let leases = LeaseStore()
                let key = keyID(1)
                var granted: [UInt64] = []
                for round in 0..<200 {
                    let holder = "sc-\(round % 4)|1"
                    let result = try leases.grant(request(key, holder: holder, wants: 1_000), at: testNow, on: connection)
                    if result.units == 0 { break }
                    granted.append(result.units)
                    #expect(result.outstanding + result.unleased == 1_000)
                }
                #expect(granted.reduce(0, +) == 1_000)
                #expect(granted.first! <= 1_000 / 2)            // k = 2: at most half of the pool to one holder
                #expect(granted.suffix(4).allSatisfy { $0 == 1 })   // the last units are spread thinly
                let nothing = try leases.grant(request(key, holder: "sc-9|1", wants: 10), at: testNow, on: connection)
                #expect(nothing.units == 0 && nothing.unleased == 0 && nothing.outstanding == 1_000)
            }
        }
    }

    @Test("usage settles the holder's lease in the same script: used + outstanding stays at the budget")
    func usageSettles() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let leases = LeaseStore()
                let key = keyID(2)
                let grant = try leases.grant(request(key, holder: "sc-1|7", wants: 100, budget: 100), at: testNow, on: connection)
                #expect(grant.units == 50)  // half the pool with one holder
                try spend(connection, key, sidecar: "sc-1", epoch: 7, sequence: 1, calls: 30, leased: 30)
                #expect(try leases.outstanding(keyID: key, feature: "api_call", periodID: period.id, on: connection) == ["sc-1|7": 20])
                // A retried batch counts once, and settles once.
                try spend(connection, key, sidecar: "sc-1", epoch: 7, sequence: 1, calls: 30, leased: 30)
                #expect(try leases.outstanding(keyID: key, feature: "api_call", periodID: period.id, on: connection) == ["sc-1|7": 20])
                let next = try leases.grant(request(key, holder: "sc-2|1", wants: 100, budget: 100), at: testNow, on: connection)
                #expect(next.used == 30 && next.unleased + next.outstanding + next.used == 100)
                // Unleased usage (fail-open) counts but settles nothing.
                try spend(connection, key, sidecar: "sc-1", epoch: 7, sequence: 2, calls: 5, leased: 0)
                #expect(try leases.outstanding(keyID: key, feature: "api_call", periodID: period.id, on: connection)["sc-1|7"] == 20)
            }
        }
    }

    @Test("a return gives units back at once; an expired holder is reclaimed only after the grace period")
    func returnAndExpiry() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                var configuration = LeaseStore.Configuration()
                configuration.allocator = LeaseAllocator(minSlice: 1, maxSlice: 1_000, shareDivisor: 1, ttl: .seconds(30))
                configuration.reclaimGrace = .seconds(10)
                let leases = LeaseStore(configuration: configuration)
                let key = keyID(3)
                let first = try leases.grant(request(key, holder: "a|1", wants: 600, budget: 600), at: testNow, on: connection)
                #expect(first.units == 600)
                #expect(try leases.grant(request(key, holder: "b|1", wants: 10, budget: 600), at: testNow, on: connection).units == 0)
                #expect(try leases.giveBack(keyID: key, feature: "api_call", periodID: period.id, holder: "a|1", units: 250, on: connection) == 250)
                // Never more than held: a duplicate return cannot inflate the pool.
                #expect(try leases.giveBack(keyID: key, feature: "api_call", periodID: period.id, holder: "a|1", units: 1_000, on: connection) == 350)
                let again = try leases.grant(request(key, holder: "a|1", wants: 1_000, budget: 600), at: testNow, on: connection)
                #expect(again.units == 600)  // b was granted nothing, so a is the only holder
                // a's leases expire at +30 s and are reclaimed only after +40 s.
                let during = try leases.grant(request(key, holder: "c|1", wants: 1_000, budget: 600), at: testNow.advanced(byNanoseconds: 35_000_000_000), on: connection)
                #expect(during.units == 0 && during.outstanding == 600)
                let after = try leases.grant(request(key, holder: "c|1", wants: 1_000, budget: 600), at: testNow.advanced(byNanoseconds: 41_000_000_000), on: connection)
                #expect(after.units == 600)
                #expect(try leases.outstanding(keyID: key, feature: "api_call", periodID: period.id, on: connection) == ["c|1": 600])
            }
        }
    }

    @Test("random grants, spends and returns from five holders never lease more than the budget")
    func invariantUnderRandomTraffic() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in try self.randomTraffic(connection) }
        }
    }

    func randomTraffic(_ connection: RedisConnection) throws {
        let leases = LeaseStore()
        let key = keyID(4)
        var random = SplitMix64(seed: 42)
        var held: [String: UInt64] = [:]
        var sequence: [String: UInt64] = [:]
        var used: UInt64 = 0
        var worst: UInt64 = 0
        for _ in 0..<2_000 {
            let n = Int(random.next() % 5)
            let holder = "sc-\(n)|1"
            let action = random.next() % 3
            if action == 0 {
                let result = try leases.grant(request(key, holder: holder, wants: random.next() % 200 + 1, budget: 5_000), at: testNow, on: connection)
                held[holder, default: 0] += result.units
                worst = max(worst, result.used + result.outstanding)
            } else if action == 1 {
                let spent = min(held[holder, default: 0], random.next() % 50)
                if spent > 0 {
                    sequence[holder, default: 0] += 1
                    try spend(connection, key, sidecar: "sc-\(n)", epoch: 1, sequence: sequence[holder]!, calls: spent, leased: spent)
                    held[holder]! -= spent
                    used += spent
                }
            } else {
                let back = min(held[holder, default: 0], random.next() % 20)
                let returned = try leases.giveBack(keyID: key, feature: "api_call", periodID: period.id, holder: holder, units: back, on: connection)
                #expect(returned == back)
                held[holder, default: 0] -= returned
            }
        }
        #expect(worst <= 5_000)
        let outstanding = try leases.outstanding(keyID: key, feature: "api_call", periodID: period.id, on: connection)
        #expect(outstanding.filter { $0.value > 0 } == held.filter { $0.value > 0 })
        #expect(used + held.values.reduce(0, +) <= 5_000)
        #expect(used > 1_000)
        #expect(try makeStore().usage(keyID: key, feature: "api_call", periodID: period.id, on: connection).units == used)
    }
}
