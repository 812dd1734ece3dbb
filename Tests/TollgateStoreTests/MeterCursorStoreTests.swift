import Testing
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

/// Stripe meter cursors against a real redis-server: ranges are cut from the counters, pending
/// ranges come back with the same identifier, and two owners never hold one range at once.
@Suite("Meter cursors in Redis", .serialized)
struct MeterCursorStoreTests {
    let cursor = MeterCursorID(keyID: keyID(7), feature: "api_call", kind: .successCalls, periodID: "d20261123")

    func count(_ calls: UInt64, seq: UInt64, on connection: RedisConnection) throws {
        let batch = UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 1, sequence: seq, aggregates: [aggregate(keyID(7), calls: calls)])
        _ = try makeStore().apply(batch, on: connection)
    }

    @Test("a range is cut from the counter, kept pending until completed, and resent with the same identifier")
    func rangeLifecycle() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let cursors = MeterCursorStore()
                #expect(try cursors.claim(cursor, owner: "c1", at: testNow, on: connection) == .idle(sent: 0, counted: 0))
                try count(5, seq: 1, on: connection)
                guard case .send(let first) = try cursors.claim(cursor, owner: "c1", at: testNow, on: connection) else {
                    Issue.record("expected a range to send")
                    return
                }
                #expect(first.from == 0 && first.to == 5 && first.value == 5 && first.claims == 1)
                #expect(first.identifier.hasPrefix("tg_") && first.identifier.count == 43)
                // The event is stamped inside its period: 2026-11-23 ends at 24:00, after testNow.
                #expect(first.timestamp == testNow.seconds)
                // More usage arrives while the range is out: the pending range does not move.
                try count(3, seq: 2, on: connection)
                guard case .send(let again) = try cursors.claim(cursor, owner: "c1", at: testNow, on: connection) else {
                    Issue.record("expected the pending range again")
                    return
                }
                #expect(again.identifier == first.identifier && again.to == 5 && again.claims == 2)
                // A stale identifier completes nothing; the right one advances the cursor.
                #expect(try cursors.complete(cursor, identifier: "tg_nope", on: connection) == false)
                #expect(try cursors.complete(cursor, identifier: first.identifier, on: connection))
                #expect(try cursors.complete(cursor, identifier: first.identifier, on: connection) == false)
                guard case .send(let second) = try cursors.claim(cursor, owner: "c1", at: testNow, on: connection) else {
                    Issue.record("expected the next range")
                    return
                }
                #expect(second.from == 5 && second.to == 8 && second.identifier != first.identifier)
                #expect(try cursors.complete(cursor, identifier: second.identifier, on: connection))
                #expect(try cursors.claim(cursor, owner: "c1", at: testNow, on: connection) == .idle(sent: 8, counted: 8))
                // The cursor outlives the counter it follows.
                let counterTTL = try connection.send("PTTL", RedisArgument(RedisKeys.usage(keyID: keyID(7), feature: "api_call", periodID: "d20261123"))).int ?? 0
                let cursorTTL = try connection.send("PTTL", RedisArgument(RedisKeys.stripeCursor(keyID: keyID(7), feature: "api_call", meter: "calls", periodID: "d20261123"))).int ?? 0
                #expect(counterTTL > 0 && cursorTTL > counterTTL)
            }
        }
    }

    @Test("the same range always gets the same identifier, whoever cuts it")
    func identifierIsDeterministic() throws {
        var identifiers: [String] = []
        for _ in 0..<2 {
            try withRedisServer { server throws in
                try server.withConnection { connection throws in
                    try count(4, seq: 1, on: connection)
                    if case .send(let range) = try MeterCursorStore().claim(cursor, owner: "any", at: testNow, on: connection) {
                        identifiers.append(range.identifier)
                    }
                }
            }
        }
        #expect(identifiers.count == 2 && identifiers[0] == identifiers[1])
    }

    @Test("another owner is kept off a live claim, takes it over once it expires, and release hands it on")
    func owners() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                var configuration = MeterCursorStore.Configuration()
                configuration.claimTTL = .seconds(30)
                let cursors = MeterCursorStore(configuration: configuration)
                try count(2, seq: 1, on: connection)
                guard case .send(let range) = try cursors.claim(cursor, owner: "c1", at: testNow, on: connection) else {
                    Issue.record("expected a range")
                    return
                }
                #expect(try cursors.claim(cursor, owner: "c2", at: testNow, on: connection)
                        == .busy(owner: "c1", until: testNow.milliseconds + 30_000))
                let later = testNow.advanced(byNanoseconds: 31_000_000_000)
                guard case .send(let taken) = try cursors.claim(cursor, owner: "c2", at: later, on: connection) else {
                    Issue.record("expected a takeover")
                    return
                }
                #expect(taken.identifier == range.identifier && taken.claims == 2)
                // c1 is not the owner any more: its release changes nothing.
                try cursors.release(cursor, owner: "c1", until: 0, on: connection)
                #expect(try cursors.claim(cursor, owner: "c1", at: later, on: connection) == .busy(owner: "c2", until: later.milliseconds + 30_000))
                try cursors.release(cursor, owner: "c2", until: 0, on: connection)
                guard case .send(let back) = try cursors.claim(cursor, owner: "c1", at: later, on: connection) else {
                    Issue.record("expected c1 to take the released range")
                    return
                }
                #expect(back.identifier == range.identifier)
                let stored = try cursors.read(cursor, on: connection)
                #expect(stored.sent == 0 && stored.pending?.identifier == range.identifier)
            }
        }
    }

    @Test("overage is units beyond the limit and credits; a finished period is stamped at its last second")
    func overageAndPastPeriods() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let over = aggregate(keyID(8), period: "d20261120", calls: 10)
                _ = try makeStore().apply(UsageBatchRecord(sidecarID: "sc", bootEpoch: 1, sequence: 1, aggregates: [over]), on: connection)
                _ = try connection.send("HINCRBY", RedisArgument(RedisKeys.usage(keyID: keyID(8), feature: "api_call", periodID: "d20261120")), "credit", 1)
                let overage = MeterCursorID(keyID: keyID(8), feature: "api_call", kind: .overage, periodID: "d20261120")
                let cursors = MeterCursorStore()
                // Without a limit there is no overage to bill; within limit + credit neither.
                #expect(try cursors.claim(overage, owner: "c1", at: testNow, on: connection) == .idle(sent: 0, counted: 0))
                #expect(try cursors.claim(overage, owner: "c1", includedLimit: 9, at: testNow, on: connection) == .idle(sent: 0, counted: 0))
                guard case .send(let range) = try cursors.claim(overage, owner: "c1", includedLimit: 5, at: testNow, on: connection) else {
                    Issue.record("expected an overage range")
                    return
                }
                #expect(range.value == 4)
                // 2026-11-20 ended at 2026-11-21T00:00:00Z = 1795219200.
                #expect(range.timestamp == 1_795_219_199)
            }
        }
    }

    @Test("the counter scan finds every counter hash and nothing else")
    func scan() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let batch = UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 1, sequence: 1, aggregates: [
                    aggregate(keyID(1), calls: 1), aggregate(keyID(2), feature: "tokens", calls: 2), aggregate(keyID(2), period: "d20261122", calls: 1),
                ])
                _ = try makeStore().apply(batch, on: connection)
                var found: [String] = []
                try makeStore().scanCounters(on: connection, count: 2) { page in
                    found += page.map { "\($0.keyID.suffix(1))/\($0.feature)/\($0.periodID)" }
                }
                #expect(found.sorted() == ["1/api_call/d20261123", "2/api_call/d20261122", "2/tokens/d20261123"])
            }
        }
    }
}
