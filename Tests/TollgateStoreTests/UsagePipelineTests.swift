#if canImport(Glibc)
import Glibc
#endif
import Testing
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

/// Ids of the clients that are blocked (`flags=b`) on `EVALSHA`, from `CLIENT LIST`.
func blockedScriptClients(_ admin: RedisConnection) throws -> [Int64] {
    let list = try admin.send("CLIENT", "LIST").string ?? ""
    return list.split(separator: "\n").compactMap { line -> Int64? in
        let fields = Dictionary(line.split(separator: " ").compactMap { field -> (String, String)? in
            let parts = field.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { $1 })
        guard fields["flags"]?.contains("b") == true, fields["cmd"] == "evalsha" else { return nil }
        return fields["id"].flatMap { Int64($0) }
    }
}

/// Waits (bounded) until `condition` holds.
func waitUntil(seconds: Int = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let stop = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < stop {
        if try condition() { return true }
        usleep(5_000)
    }
    return try condition()
}

@Suite("UsagePipeline: several batches in flight against a real redis-server", .serialized)
struct UsagePipelineTests {
    func batch(_ sequence: UInt64, keys: [Int], sidecar: String = "sc-1", calls: UInt64 = 2) -> UsageBatchRecord {
        UsageBatchRecord(sidecarID: sidecar, bootEpoch: 1, sequence: sequence, aggregates: keys.map { aggregate(keyID($0), calls: calls) })
    }

    func calls(_ connection: RedisConnection, _ key: Int) throws -> UInt64 {
        try makeStore().usage(keyID: keyID(key), feature: "api_call", periodID: "d20261123", on: connection).calls
    }

    func markerExists(_ connection: RedisConnection, key: Int, sequence: UInt64, sidecar: String = "sc-1") throws -> Bool {
        try connection.send("EXISTS", RedisArgument(RedisKeys.batchMarker(keyID: keyID(key), sidecarID: sidecar, bootEpoch: 1, sequence: sequence))) == .integer(1)
    }

    @Test("batches of one sender are merged; none completes before Redis answered, then each is committed")
    func completesOnlyAfterCommit() throws {
        try withRedisServer { server in
            let connection = try RedisConnection(configuration: server.configuration)
            let admin = try RedisConnection(configuration: server.configuration)
            defer {
                connection.close()
                admin.close()
            }
            let store = makeStore()
            _ = try store.apply(batch(100, keys: [99]), on: connection)  // loads the script
            try admin.send("CONFIG", "RESETSTAT")
            var options = UsagePipelineOptions()
            options.maxBatchesPerGroup = 3
            let pipeline = UsagePipeline(store: store, connection: connection, options: options)
            try admin.send("CLIENT", "PAUSE", 10_000, "WRITE")
            var tokens: [Int] = []
            for sequence in 1...5 as ClosedRange<UInt64> {
                tokens.append(try pipeline.submit(batch(sequence, keys: [1, 2, Int(sequence) + 2])))
            }
            while pipeline.canSend { pipeline.send() }
            #expect(pipeline.groupsInFlight == 2 && pipeline.queuedBatches == 0)
            #expect(try waitUntil { try blockedScriptClients(admin).count == 1 })
            pipeline.receive(readable: false)
            #expect(pipeline.takeCompletions().isEmpty)
            #expect(try !markerExists(admin, key: 1, sequence: 1))

            try admin.send("CLIENT", "UNPAUSE")
            let done = pipeline.finish()
            #expect(done.map(\.token).sorted() == tokens)
            for completion in done {
                let result = try completion.result.get()
                #expect(result == BatchApplyResult(appliedAggregates: 3, duplicateAggregates: 0))
                #expect(try markerExists(admin, key: 1, sequence: completion.sequence))
            }
            #expect(try calls(admin, 1) == 10 && calls(admin, 2) == 10 && calls(admin, 3) == 2 && calls(admin, 7) == 2)
            // Two groups (3 + 2 batches), one call per key each, instead of 15 calls.
            let evalsha = try admin.send("INFO", "commandstats").string ?? ""
            #expect(evalsha.contains("cmdstat_evalsha:calls=\(5 + 4),"))
        }
    }

    @Test("a connection lost with groups in flight fails exactly the batches not committed; their retry applies once")
    func failureMidPipeline() throws {
        try withRedisServer { server in
            let connection = try RedisConnection(configuration: server.configuration)
            let admin = try RedisConnection(configuration: server.configuration)
            defer {
                connection.close()
                admin.close()
            }
            var options = UsagePipelineOptions()
            options.maxBatchesPerGroup = 2
            let pipeline = UsagePipeline(store: makeStore(), connection: connection, options: options)
            _ = try pipeline.submit(batch(1, keys: [1, 2]))
            #expect(try pipeline.finish().map { try $0.result.get().outcome } == [.applied])

            try admin.send("CLIENT", "PAUSE", 10_000, "WRITE")
            for sequence in 2...4 as ClosedRange<UInt64> {
                _ = try pipeline.submit(batch(sequence, keys: [1, Int(sequence) + 10]))
            }
            while pipeline.canSend { pipeline.send() }
            #expect(pipeline.groupsInFlight == 2)
            #expect(try waitUntil { try blockedScriptClients(admin).count == 1 })
            let blocked = try #require(try blockedScriptClients(admin).first)
            try admin.send("CLIENT", "KILL", "ID", RedisArgument(blocked))
            try admin.send("CLIENT", "UNPAUSE")
            var failed: [UInt64] = []
            #expect(waitUntil {
                pipeline.receiveBlocking()
                failed += pipeline.takeCompletions().compactMap { completion in
                    if case .failure(let error) = completion.result, error.code == .unavailable { completion.sequence } else { nil }
                }
                return failed.count == 3
            })
            #expect(failed.sorted() == [2, 3, 4] && !pipeline.isAwaitingReplies)
            for sequence in 2...4 as ClosedRange<UInt64> {
                #expect(try !markerExists(admin, key: 1, sequence: sequence))
            }
            #expect(try markerExists(admin, key: 1, sequence: 1) && calls(admin, 1) == 2 && calls(admin, 12) == 0)

            // The senders retry everything, the committed batch too: each counts once.
            for sequence in 1...4 as ClosedRange<UInt64> {
                _ = try pipeline.submit(batch(sequence, keys: sequence == 1 ? [1, 2] : [1, Int(sequence) + 10]))
            }
            let retried = pipeline.finish()
            let outcomes = try Dictionary(uniqueKeysWithValues: retried.map { ($0.sequence, try $0.result.get().outcome) })
            #expect(outcomes == [1: .duplicate, 2: .applied, 3: .applied, 4: .applied])
            #expect(try calls(admin, 1) == 8 && calls(admin, 2) == 2 && calls(admin, 12) == 2 && calls(admin, 14) == 2)
        }
    }

    @Test("a batch applied before meets new ones in one call: the call changes nothing and each is applied alone")
    func mixedCall() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                let store = makeStore()
                #expect(try store.apply(batch(1, keys: [1, 2]), on: connection).outcome == .applied)
                let pipeline = UsagePipeline(store: store, connection: connection)
                for sequence in 1...3 as ClosedRange<UInt64> {
                    _ = try pipeline.submit(batch(sequence, keys: [1, 2, 3]))
                }
                let results = try Dictionary(uniqueKeysWithValues: pipeline.finish().map { ($0.sequence, try $0.result.get()) })
                var firstAgain = BatchApplyResult(appliedAggregates: 1, duplicateAggregates: 2)
                firstAgain.duplicateKeyIDs = [keyID(1), keyID(2)]  // the keys whose share was counted before
                #expect(results[1] == firstAgain)
                #expect(results[2] == BatchApplyResult(appliedAggregates: 3, duplicateAggregates: 0))
                #expect(results[3] == BatchApplyResult(appliedAggregates: 3, duplicateAggregates: 0))
                #expect(try calls(connection, 1) == 6 && calls(connection, 2) == 6 && calls(connection, 3) == 6)

                // This pipeline remembers them now: their next copies go in calls of their own.
                _ = try pipeline.submit(batch(2, keys: [1, 2, 3]))
                _ = try pipeline.submit(batch(4, keys: [1, 2, 3]))
                let again = try Dictionary(uniqueKeysWithValues: pipeline.finish().map { ($0.sequence, try $0.result.get().outcome) })
                #expect(again == [2: .duplicate, 4: .applied])
                #expect(try calls(connection, 1) == 8)
            }
        }
    }

    @Test("a second copy submitted while the first is queued joins it: one token, counted once")
    func copiesJoin() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                let pipeline = UsagePipeline(store: makeStore(), connection: connection)
                let first = try pipeline.submit(batch(1, keys: [1]))
                let second = try pipeline.submit(batch(1, keys: [1]))
                #expect(first == second)
                let done = pipeline.finish()
                #expect(done.count == 1 && done.first?.token == first)
                #expect(try calls(connection, 1) == 2)
            }
        }
    }

    @Test("a script flushed between groups is loaded again and the calls are resent once")
    func noScript() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                let admin = try RedisConnection(configuration: server.configuration)
                defer { admin.close() }
                let pipeline = UsagePipeline(store: makeStore(), connection: connection)
                _ = try pipeline.submit(batch(1, keys: [1]))
                _ = pipeline.finish()
                try admin.send("SCRIPT", "FLUSH")
                for sequence in 2...6 as ClosedRange<UInt64> {
                    _ = try pipeline.submit(batch(sequence, keys: [1, 2]))
                }
                let done = pipeline.finish()
                #expect(try done.map { try $0.result.get().outcome } == Array(repeating: .applied, count: 5))
                #expect(try calls(connection, 1) == 12 && calls(connection, 2) == 10)
            }
        }
    }

    @Test("a call Redis refuses fails only the batches it carries")
    func scriptErrorFailsItsBatches() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                try connection.send("HSET", RedisArgument(RedisKeys.usage(keyID: keyID(9), feature: "api_call", periodID: "d20261123")), "calls", "garbage")
                let pipeline = UsagePipeline(store: makeStore(), connection: connection)
                _ = try pipeline.submit(batch(1, keys: [1, 2]))
                _ = try pipeline.submit(batch(1, keys: [9], sidecar: "sc-2"))
                _ = try pipeline.submit(batch(2, keys: [3], sidecar: "sc-2"))
                let results = Dictionary(uniqueKeysWithValues: pipeline.finish().map { ("\($0.sidecarID)/\($0.sequence)", $0.result) })
                #expect((try? results["sc-1/1"]?.get())?.outcome == .applied)
                #expect((try? results["sc-2/2"]?.get())?.outcome == .applied)
                guard case .failure(let error)? = results["sc-2/1"] else {
                    Issue.record("the batch on the corrupt counter was not refused: \(String(describing: results["sc-2/1"]))")
                    return
                }
                #expect(error.code == .redis)
                #expect(try calls(connection, 1) == 2 && calls(connection, 3) == 2)
            }
        }
    }

    @Test("sums past the per-counter limit go in a second slot; totals stay exact")
    func largeSumsSplit() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                let big = UInt64(1) << 50
                func record(_ sequence: UInt64) -> UsageBatchRecord {
                    UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 1, sequence: sequence, aggregates: [
                        UsageAggregateRecord(keyID: keyID(1), feature: "api_call", periodID: "d20261123", counters: UsageCounters(calls: big, units: 1)),
                        UsageAggregateRecord(keyID: keyID(1), feature: "api_call", periodID: "d20261123", counters: UsageCounters(calls: big - 1, units: 1)),
                    ])
                }
                let pipeline = UsagePipeline(store: makeStore(), connection: connection)
                _ = try pipeline.submit(record(1))
                _ = try pipeline.submit(record(2))
                #expect(try pipeline.finish().map { try $0.result.get().appliedAggregates } == [2, 2])
                let stored = try makeStore().usage(keyID: keyID(1), feature: "api_call", periodID: "d20261123", on: connection)
                #expect(stored.calls == 4 * big - 2 && stored.units == 4)
            }
        }
    }

    @Test("expiry is set when a hash or field is created; an existing hash keeps its expiry and its set gets the same")
    func expirySetOnCreation() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                let store = makeStore()  // the day of testNow ends 12 h later
                let hash = RedisArgument(RedisKeys.usage(keyID: keyID(1), feature: "api_call", periodID: "d20261123"))
                let set = RedisArgument(RedisKeys.features(keyID: keyID(1), periodID: "d20261123"))
                let full: ClosedRange<Int64> = (35 * 86_400 + 43_200 - 5)...(35 * 86_400 + 43_200)
                _ = try store.apply(batch(1, keys: [1]), on: connection)
                #expect(try full ~= connection.send("TTL", hash).expectInteger())
                #expect(try full ~= connection.send("TTL", set).expectInteger())

                try connection.send("EXPIRE", hash, 1_000)
                try connection.send("EXPIRE", set, 1_000)
                _ = try store.apply(batch(2, keys: [1]), on: connection)  // the same fields: nothing created
                #expect(try (990...1_000) ~= connection.send("TTL", hash).expectInteger())
                #expect(try (990...1_000) ~= connection.send("TTL", set).expectInteger())

                var withErrors = aggregate(keyID(1), calls: 1)
                withErrors.counters.statuses.serverError = 1  // a field the hash does not have yet
                _ = try store.apply(UsageBatchRecord(sidecarID: "sc-1", bootEpoch: 1, sequence: 3, aggregates: [withErrors]), on: connection)
                #expect(try full ~= connection.send("TTL", hash).expectInteger())
                #expect(try full ~= connection.send("TTL", set).expectInteger())
                #expect(try connection.send("SMEMBERS", set) == .array([.bulk(Array("api_call".utf8))]))
            }
        }
    }
}
