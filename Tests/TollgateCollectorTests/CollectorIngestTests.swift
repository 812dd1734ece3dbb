import Foundation
import Testing
import TollgateCollector
import TollgateConfig
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport
import TollgateWire

/// Calls recorded in Redis for `keyID` on `api_call` in `d20261123`.
func storedCalls(_ redis: RedisServer, _ keyID: String) throws -> UsageCounters {
    try redis.withConnection { connection throws in
        try UsageStore().usage(keyID: keyID, feature: "api_call", periodID: "d20261123", on: connection)
    }
}

// Nested in CollectorComponentTests: collector suites run one at a time (shared metrics).
extension CollectorComponentTests {
@Suite("Collector ingest: real ZeroMQ and redis-server", .serialized)
struct CollectorIngestTests {
    @Test("Hello gets HelloAck; a batch is applied to Redis and acknowledged with its ids and correlation id")
    func helloAndBatch() async throws {
        try await withCollector { collector in
            let batch = wireBatch(sequence: 1, keys: [TestKeys.freeID, TestKeys.proID])
            var hello = Tollgate_V1_Hello()
            hello.sidecarID = "sc-test"
            hello.bootEpoch = 1
            let exchange = try await dealerExchange(collector.endpoint, send: [
                try frame(.hello(hello), correlationID: 7), try frame(.usageBatch(batch), correlationID: 8),
            ], expecting: 2)

            #expect(exchange.replies.count == 2)
            let ack = try #require(exchange.replies.first { $0.correlationID == 8 })
            guard case .batchAck(let batchAck)? = ack.body else {
                Issue.record("expected a BatchAck, got \(String(describing: ack.body))")
                return
            }
            #expect(batchAck.status == .applied)
            #expect(batchAck.sidecarID == "sc-test" && batchAck.bootEpoch == 1 && batchAck.sequence == 1)
            let helloReply = try #require(exchange.replies.first { $0.correlationID == 7 })
            guard case .helloAck(let helloAck)? = helloReply.body else {
                Issue.record("expected a HelloAck, got \(String(describing: helloReply.body))")
                return
            }
            #expect(helloAck.collectorID == "collector-test")
            #expect(helloAck.currentUpdateVersion == 1)

            for key in [TestKeys.freeID, TestKeys.proID] {
                let counters = try storedCalls(collector.redis, key)
                #expect(counters.calls == 3 && counters.units == 3 && counters.statuses.success == 3)
                #expect(counters.latencyMaxMicroseconds == 700 && counters.extraUnits == ["tokens": 300])
            }
            #expect(collector.service.fleet.status(of: "sc-test")?.bootEpoch == 1)
        }
    }

    @Test("a batch delivered twice counts once: APPLIED, then DUPLICATE")
    func duplicate() async throws {
        try await withCollector { collector in
            let batch = try frame(.usageBatch(wireBatch(sequence: 5, keys: [TestKeys.freeID])), correlationID: 1)
            let first = try await dealerExchange(collector.endpoint, send: [batch], expecting: 1)
            let second = try await dealerExchange(collector.endpoint, send: [batch, batch], expecting: 2)
            let statuses = (first.replies + second.replies).compactMap { envelope -> Tollgate_V1_BatchAck.Status? in
                if case .batchAck(let ack)? = envelope.body { ack.status } else { nil }
            }
            #expect(statuses == [.applied, .duplicate, .duplicate])
            #expect(try storedCalls(collector.redis, TestKeys.freeID).calls == 3)
        }
    }

    @Test("a malformed batch is REJECTED with the reason, and nothing is counted")
    func rejected() async throws {
        try await withCollector { collector in
            let bad = wireBatch(sequence: 1, keys: [TestKeys.freeID, "bad{key"])
            let exchange = try await dealerExchange(collector.endpoint, send: [try frame(.usageBatch(bad))], expecting: 1)
            guard case .batchAck(let ack)? = exchange.replies.first?.body else {
                Issue.record("expected a BatchAck, got \(exchange.replies)")
                return
            }
            #expect(ack.status == .rejected)
            #expect(ack.error.contains("key_id"))
            #expect(try storedCalls(collector.redis, TestKeys.freeID).calls == 0)
        }
    }

    @Test("garbage, truncated, oversized and wrongly framed messages are counted and dropped; serving goes on")
    func badFrames() async throws {
        try await withCollector(configure: { $0.zeromq.maxFrameBytes = 64 << 10 }) { collector in
            let metrics = TestMetrics.shared
            func errors(_ reason: String) -> Double {
                metrics.value(CollectorMetricName.decodeErrors, [("reason", reason)])
            }
            let before = WireError.Code.allCases.map { errors($0.rawValue) }
            let valid = try WireCodec().encode(.usageBatch(wireBatch(sequence: 9, keys: [TestKeys.freeID])), correlationID: 99)
            var bodiless = Tollgate_V1_Envelope()
            bodiless.protocolVersion = WireCodec.protocolVersion
            let messages: [[[UInt8]]] = [
                [Array("not protobuf at all \u{00}\u{ff}".utf8)],       // malformed
                [Array(valid.prefix(valid.count / 2))],                   // truncated: malformed
                [valid + valid],                                          // two envelopes in one frame: malformed
                [[]],                                                     // empty: version 0, unsupported
                [try WireCodec().encode(bodiless)],                       // no body this build knows
                [Array(repeating: 0x0A, count: (64 << 10) + 16)],         // over the frame limit
                [valid, valid],                                           // three frames at the ROUTER
                [valid],                                                  // and the valid batch still gets through
            ]
            let exchange = try await dealerExchange(collector.endpoint, send: messages, expecting: 1, settle: .milliseconds(300))
            #expect(exchange.replies.count == 1)
            guard case .batchAck(let ack)? = exchange.replies.first?.body else {
                Issue.record("expected one BatchAck, got \(exchange.replies)")
                return
            }
            #expect(ack.status == .applied && exchange.replies.first?.correlationID == 99)
            let after = WireError.Code.allCases.map { errors($0.rawValue) }
            let delta = Dictionary(uniqueKeysWithValues: zip(WireError.Code.allCases.map(\.rawValue), zip(after, before).map { $0 - $1 }))
            #expect(delta == ["malformed": 3, "unsupportedVersion": 1, "unknownKind": 1, "oversized": 1, "badFraming": 1])
            #expect(try storedCalls(collector.redis, TestKeys.freeID).calls == 3)
        }
    }

    @Test("KeyLookup of a configured key returns its plan and effective plan; an unknown key is not known")
    func keyLookup() async throws {
        try await withCollector { collector in
            var known = Tollgate_V1_KeyLookup()
            known.keyID = TestKeys.proID
            var unknown = Tollgate_V1_KeyLookup()
            unknown.keyID = APIKeyHasher.keyID(for: "tg_nobody_has_this_key")
            let exchange = try await dealerExchange(collector.endpoint, send: [
                try frame(.keyLookup(known), correlationID: 1), try frame(.keyLookup(unknown), correlationID: 2),
            ], expecting: 2)
            let infos = Dictionary(uniqueKeysWithValues: exchange.replies.compactMap { envelope -> (UInt64, Tollgate_V1_KeyInfo)? in
                if case .keyInfo(let info)? = envelope.body { (envelope.correlationID, info) } else { nil }
            })
            let pro = try #require(infos[1])
            #expect(pro.known && !pro.revoked)
            #expect(pro.keyID == TestKeys.proID && pro.name == "demo-pro" && pro.plan == "pro")
            #expect(pro.version == 1)
            let effective = try JSONDecoder().decode(EffectivePlan.self, from: pro.effectivePlanJson)
            #expect(effective == TestKeys.pro.resolved(with: TestKeys.proOverrides))
            let nobody = try #require(infos[2])
            #expect(!nobody.known && nobody.keyID == unknown.keyID && nobody.effectivePlanJson.isEmpty)
        }
    }

    @Test("a heartbeat puts the sidecar in the fleet table and the connected gauge")
    func heartbeat() async throws {
        try await withCollector { collector in
            var heartbeat = Tollgate_V1_Heartbeat()
            heartbeat.sidecarID = "sc-beat"
            heartbeat.bootEpoch = 4
            heartbeat.spoolRecords = 12
            // A heartbeat has no reply: follow it with a lookup to know it was handled.
            var lookup = Tollgate_V1_KeyLookup()
            lookup.keyID = TestKeys.freeID
            _ = try await dealerExchange(collector.endpoint, send: [try frame(.heartbeat(heartbeat)), try frame(.keyLookup(lookup))], expecting: 1)
            let status = try #require(collector.service.fleet.status(of: "sc-beat"))
            #expect(status.bootEpoch == 4 && status.spoolRecords == 12)
            #expect(collector.service.fleet.connected(at: WallClock().now()).map(\.sidecarID) == ["sc-beat"])
            #expect(TestMetrics.shared.value(CollectorMetricName.connectedSidecars) == 1)
        }
    }

    @Test("with Redis down a batch gets ErrorReply UNAVAILABLE and no ack; once Redis is back the retry is applied")
    func redisDown() async throws {
        try await withCollector(redisOptions: .init(appendOnly: true)) { collector in
            let batch = try frame(.usageBatch(wireBatch(sequence: 2, keys: [TestKeys.freeID])), correlationID: 3)
            let warmUp = try await dealerExchange(collector.endpoint, send: [try frame(.usageBatch(wireBatch(sequence: 1, keys: [TestKeys.freeID])))], expecting: 1)
            #expect(warmUp.replies.count == 1)

            collector.redis.kill()
            let down = try await dealerExchange(collector.endpoint, send: [batch], expecting: 1)
            guard case .error(let error)? = down.replies.first?.body else {
                Issue.record("expected an ErrorReply, got \(down.replies)")
                return
            }
            #expect(error.code == .unavailable && down.replies.count == 1)

            try collector.redis.restart()
            let retry = try await dealerExchange(collector.endpoint, send: [batch, batch], expecting: 2)
            let statuses = retry.replies.compactMap { envelope -> Tollgate_V1_BatchAck.Status? in
                if case .batchAck(let ack)? = envelope.body { ack.status } else { nil }
            }
            #expect(statuses == [.applied, .duplicate])
            #expect(try storedCalls(collector.redis, TestKeys.freeID).calls == 6)
        }
    }
}
}
