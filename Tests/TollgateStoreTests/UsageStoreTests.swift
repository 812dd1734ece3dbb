import Testing
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

@Suite("UsageStore against a real redis-server")
struct UsageStoreTests {
    @Test("applying a batch sums every counter exactly")
    func appliesExactly() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let store = makeStore()
                var first = aggregate(keyID(1), calls: 3, latencyMax: 900)
                first.counters.statuses = StatusCounts(success: 2, serverError: 1)
                first.counters.extraUnits = ["tokens": 532]
                first.counters.overageUnits = 2
                first.counters.overageChargeAtomic = 2_000
                let second = aggregate(keyID(1), calls: 4, latencyMax: 300)  // same key, feature, period
                let other = aggregate(keyID(2), feature: "export", calls: 1)
                let batch = UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 1, sequence: 1, aggregates: [first, second, other])

                let result = try store.apply(batch, on: connection)
                #expect(result == BatchApplyResult(appliedAggregates: 3, duplicateAggregates: 0))
                #expect(result.outcome == .applied)

                var expected = first.counters
                expected.add(second.counters)
                let stored = try store.usage(keyID: keyID(1), feature: "api_call", periodID: "d20261123", on: connection)
                #expect(stored == expected)
                #expect(stored.latencyMaxMicroseconds == 900)
                #expect(stored.statuses == StatusCounts(success: 6, serverError: 1))
                #expect(stored.extraUnits == ["tokens": 532])
                #expect(try store.usage(keyID: keyID(2), periodID: "d20261123", on: connection) == ["export": other.counters])
                #expect(try store.usage(keyID: keyID(3), feature: "api_call", periodID: "d20261123", on: connection) == UsageCounters())
            }
        }
    }

    @Test("the same batch delivered twice counts once and reports duplicate")
    func duplicateBatch() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let store = makeStore()
                let batch = UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 9, sequence: 4, aggregates: [
                    aggregate(keyID(1), calls: 5), aggregate(keyID(2), calls: 7),
                ])
                #expect(try store.apply(batch, on: connection).outcome == .applied)
                let again = try store.apply(batch, on: connection)
                #expect(again.appliedAggregates == 0 && again.duplicateAggregates == 2)
                #expect(again.duplicateKeyIDs == [keyID(1), keyID(2)])
                #expect(again.outcome == .duplicate)
                #expect(try store.usage(keyID: keyID(1), feature: "api_call", periodID: "d20261123", on: connection).calls == 5)
                #expect(try store.usage(keyID: keyID(2), feature: "api_call", periodID: "d20261123", on: connection).calls == 7)

                // Another sequence, epoch or sidecar is another batch.
                for (sidecar, epoch, sequence) in [("sc-1", UInt64(9), UInt64(5)), ("sc-1", 10, 4), ("sc-2", 9, 4)] {
                    let other = UsageBatchRecord(sidecarID: sidecar, bootEpoch: epoch, sequence: sequence, aggregates: batch.aggregates)
                    #expect(try store.apply(other, on: connection).outcome == .applied)
                }
                #expect(try store.usage(keyID: keyID(1), feature: "api_call", periodID: "d20261123", on: connection).calls == 20)
            }
        }
    }

    @Test("a batch applied only in part completes exactly on retry")
    func partialApply() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let store = makeStore()
                let full = UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 1, sequence: 3, aggregates: [
                    aggregate(keyID(1), calls: 1), aggregate(keyID(1), feature: "search", calls: 2),
                    aggregate(keyID(2), calls: 3), aggregate(keyID(3), calls: 4), aggregate(keyID(4), calls: 5),
                ])
                // A crash after the calls of keys 1 and 2 ran leaves exactly their markers and counters.
                var partial = full
                partial.aggregates = full.aggregates.filter { [keyID(1), keyID(2)].contains($0.keyID) }
                #expect(try store.apply(partial, on: connection).appliedAggregates == 3)

                let retry = try store.apply(full, on: connection)
                #expect(retry.appliedAggregates == 2 && retry.duplicateAggregates == 3)
                // The sinks' audit learns which keys' shares an earlier delivery had counted.
                #expect(retry.duplicateKeyIDs == [keyID(1), keyID(2)])
                #expect(retry.outcome == .applied)
                for (index, calls) in [(1, 1), (2, 3), (3, 4), (4, 5)] {
                    #expect(try store.usage(keyID: keyID(index), feature: "api_call", periodID: "d20261123", on: connection).calls == UInt64(calls))
                }
                #expect(try store.usage(keyID: keyID(1), feature: "search", periodID: "d20261123", on: connection).calls == 2)
                #expect(try store.apply(full, on: connection).outcome == .duplicate)
            }
        }
    }

    @Test("counters and markers survive a Redis restart with AOF")
    func survivesRestart() throws {
        try withRedisServer(.init(appendOnly: true)) { server throws in
            let store = makeStore()
            let batch = UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 1, sequence: 1, aggregates: [aggregate(keyID(1), calls: 42)])
            try server.withConnection { connection throws in #expect(try store.apply(batch, on: connection).outcome == .applied) }
            try server.restart()
            try server.withConnection { connection throws in
                #expect(try store.usage(keyID: keyID(1), feature: "api_call", periodID: "d20261123", on: connection).calls == 42)
                #expect(try store.apply(batch, on: connection).outcome == .duplicate)
            }
        }
    }

    @Test("the connection reconnects after Redis was down; while down the store reports unavailable")
    func redisDown() throws {
        try withRedisServer(.init(appendOnly: true)) { server throws in
            try server.withConnection { connection throws in
                let store = makeStore()
                let batch = UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 1, sequence: 1, aggregates: [aggregate(keyID(1), calls: 2)])
                server.kill()
                let error = #expect(throws: StoreError.self) { try store.apply(batch, on: connection) }
                #expect(error?.code == .unavailable)
                try server.restart()
                #expect(try store.apply(batch, on: connection).outcome == .applied)
                #expect(try store.apply(batch, on: connection).outcome == .duplicate)
            }
        }
    }

    @Test("counters expire after their period ends plus retention; markers after the marker TTL")
    func expiries() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let store = makeStore()  // now = 2026-11-23T12:00Z; the day ends 12 h later
                let batch = UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 1, sequence: 1, aggregates: [
                    aggregate(keyID(1), calls: 1), aggregate(keyID(1), period: "d20240101", calls: 1),
                ])
                _ = try store.apply(batch, on: connection)
                let retention: Int64 = 35 * 86_400
                let current = try connection.send("TTL", RedisArgument(RedisKeys.usage(keyID: keyID(1), feature: "api_call", periodID: "d20261123"))).expectInteger()
                #expect((retention + 43_200 - 5)...(retention + 43_200) ~= current)
                let old = try connection.send("TTL", RedisArgument(RedisKeys.usage(keyID: keyID(1), feature: "api_call", periodID: "d20240101"))).expectInteger()
                #expect((retention - 5)...retention ~= old)
                let marker = try connection.send("TTL", RedisArgument(RedisKeys.batchMarker(keyID: keyID(1), sidecarID: "sc-1", bootEpoch: 1, sequence: 1))).expectInteger()
                #expect((7 * 86_400 - 5)...(7 * 86_400) ~= marker)
            }
        }
    }

    @Test("10,000 random aggregates over 50 keys, some batches delivered twice, sum exactly")
    func randomAggregates() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let store = makeStore()
                var generator = SplitMix64(seed: 0x7011_6a7e)
                let features = ["api_call", "search", "export"]
                let periods = ["d20261123", "m202611", "h2026112312"]
                var tally: [String: UsageCounters] = [:]  // "key|feature|period"
                var sequence: UInt64 = 0
                var remaining = 10_000
                while remaining > 0 {
                    let size = min(remaining, Int.random(in: 1...400, using: &generator))
                    remaining -= size
                    var aggregates: [UsageAggregateRecord] = []
                    for _ in 0..<size {
                        let key = keyID(Int.random(in: 1...50, using: &generator))
                        let feature = features.randomElement(using: &generator)!
                        let period = periods.randomElement(using: &generator)!
                        var record = aggregate(key, feature: feature, period: period, calls: .random(in: 0...1_000, using: &generator),
                                               latencyMax: .random(in: 0...5_000_000, using: &generator))
                        record.counters.units = .random(in: 0...1_000_000, using: &generator)
                        if Bool.random(using: &generator) { record.counters.extraUnits["tokens"] = .random(in: 1...10_000, using: &generator) }
                        tally["\(key)|\(feature)|\(period)", default: UsageCounters()].add(record.counters)
                        aggregates.append(record)
                    }
                    sequence += 1
                    let batch = UsageBatchRecord(sidecarID: "sc-\(sequence % 3)", bootEpoch: 1, sequence: sequence, aggregates: aggregates)
                    _ = try store.apply(batch, on: connection)
                    if Int.random(in: 0..<4, using: &generator) == 0 {
                        #expect(try store.apply(batch, on: connection).outcome == .duplicate)
                    }
                }
                var stored: [String: UsageCounters] = [:]
                for key in 1...50 {
                    for period in periods {
                        for (feature, counters) in try store.usage(keyID: keyID(key), periodID: period, on: connection) {
                            stored["\(keyID(key))|\(feature)|\(period)"] = counters
                        }
                    }
                }
                #expect(stored.count == tally.count)
                #expect(stored == tally)
            }
        }
    }
}

