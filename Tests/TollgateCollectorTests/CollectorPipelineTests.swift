#if canImport(Glibc)
import Glibc
#endif
import Testing
import TollgateCollector
import TollgateRedis
import TollgateStore
import TollgateTestSupport
import TollgateWire
import TollgateZeroMQ

/// A DEALER used step by step on one thread: send, wait for a reply, talk to Redis in between.
struct StepDealer {
    let socket: ZMQSocket
    let codec = WireCodec()

    func send(_ body: Tollgate_V1_Envelope.OneOf_Body, correlationID: UInt64) throws {
        try self.socket.send([try self.codec.encode(body, correlationID: correlationID)])
    }

    /// The next reply within `timeout`, or nil.
    func receive(timeout: Duration = .seconds(10)) throws -> Tollgate_V1_Envelope? {
        let stop = ContinuousClock.now + timeout
        while ContinuousClock.now < stop {
            guard try self.socket.poll(.readable, timeoutMilliseconds: 20).contains(.readable),
                  let frames = try self.socket.tryReceiveMessage(), frames.count == 1 else { continue }
            return try self.codec.decode(frames[0])
        }
        return nil
    }
}

/// Runs `body` with a fresh DEALER connected to `endpoint` and a Redis connection to `redis`, on one thread.
func withStepDealer<T: Sendable>(
    _ endpoint: String, redis: RedisConfiguration, _ body: sending @escaping (StepDealer, RedisConnection) throws -> T
) async throws -> T {
    try await ZMQSocketThread.run(name: "test-step-dealer") { _ in
        let context = try ZMQContext()
        defer { context.close() }
        let socket = try context.makeSocket(.dealer)
        defer { socket.close() }
        try socket.setOption(.linger, to: 0)
        try socket.connect(endpoint)
        let admin = try RedisConnection(configuration: redis)
        defer {
            _ = try? admin.send("CLIENT", "UNPAUSE")
            admin.close()
        }
        return try body(StepDealer(socket: socket), admin)
    }
}

/// Ids of the clients blocked (`flags=b`) on `EVALSHA`, from `CLIENT LIST`.
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

func ackStatus(_ envelope: Tollgate_V1_Envelope?) -> Tollgate_V1_BatchAck.Status? {
    if case .batchAck(let ack)? = envelope?.body { ack.status } else { nil }
}

@Suite("Collector ingest pipelining: real ZeroMQ and redis-server", .serialized)
struct CollectorPipelineTests {
    @Test("forty batches sent at once are each acknowledged once, and counted once; a copy among them is DUPLICATE")
    func manyBatchesAtOnce() async throws {
        try await withCollector { collector in
            // The collector is up and has its script loaded before the burst.
            let warmUp = try await dealerExchange(collector.endpoint, send: [try frame(.usageBatch(wireBatch(sequence: 1_000, keys: [TestKeys.freeID])))], expecting: 1)
            #expect(ackStatus(warmUp.replies.first) == .applied)
            var messages = try (1...40 as ClosedRange<UInt64>).map { sequence in
                try frame(.usageBatch(wireBatch(sequence: sequence, keys: [TestKeys.freeID, TestKeys.proID])), correlationID: sequence)
            }
            messages.append(messages[4])
            let exchange = try await dealerExchange(collector.endpoint, send: messages, expecting: 41, timeout: .seconds(30))
            var statuses: [UInt64: [Tollgate_V1_BatchAck.Status]] = [:]
            for reply in exchange.replies {
                guard case .batchAck(let ack)? = reply.body else {
                    Issue.record("expected only acks, got \(reply)")
                    continue
                }
                #expect(ack.sequence == reply.correlationID)
                statuses[ack.sequence, default: []].append(ack.status)
            }
            #expect(statuses.count == 40 && exchange.replies.count == 41, "acknowledged: \(statuses.keys.sorted())")
            #expect(statuses.filter { $0.key != 5 }.values.allSatisfy { $0 == [.applied] })
            #expect(statuses[5] == [.applied, .duplicate])
            #expect(try storedCalls(collector.redis, TestKeys.freeID).calls == 123)
            #expect(try storedCalls(collector.redis, TestKeys.proID).calls == 120)
        }
    }

    @Test("bursts with repeated deliveries, the script flushed now and then: every message answered, totals exact")
    func burstsWithCopiesAndFlushes() async throws {
        try await withCollector { collector in
            var random = SplitMix64(seed: 7)
            var sequence: UInt64 = 0
            for round in 0..<30 {
                if round % 3 == 0 {
                    try collector.redis.withConnection { connection in _ = try connection.send("SCRIPT", "FLUSH") }
                }
                var messages: [[[UInt8]]] = []
                for _ in 0..<(Int(random.next() % 30) + 1) {
                    sequence += 1
                    messages.append(try frame(.usageBatch(wireBatch(sequence: sequence, keys: [TestKeys.freeID, TestKeys.proID])), correlationID: sequence))
                    if random.next() % 5 == 0 { messages.append(messages[Int(random.next() % UInt64(messages.count))]) }
                }
                let exchange = try await dealerExchange(collector.endpoint, send: messages, expecting: messages.count, settle: .milliseconds(20), timeout: .seconds(30))
                let acks = exchange.replies.compactMap(ackStatus)
                #expect(acks.count == messages.count, "round \(round): \(acks.count) acks for \(messages.count) messages")
                #expect(acks.filter { $0 == .applied }.count == Set(messages.map { $0[0] }).count)
            }
            for key in [TestKeys.freeID, TestKeys.proID] {
                #expect(try storedCalls(collector.redis, key).calls == 3 * sequence)
            }
        }
    }

    @Test("a KeyLookup is answered while a batch waits on Redis; the batch is acknowledged only once Redis ran it")
    func requestsDoNotWaitBehindBatches() async throws {
        try await withCollector { collector in
            let warmUp = try await dealerExchange(collector.endpoint, send: [try frame(.usageBatch(wireBatch(sequence: 1, keys: [TestKeys.freeID])))], expecting: 1)
            #expect(ackStatus(warmUp.replies.first) == .applied)
            let (info, ackWhilePaused, ack) = try await withStepDealer(collector.endpoint, redis: collector.redis.configuration) { dealer, admin in
                try admin.send("CLIENT", "PAUSE", 10_000, "WRITE")
                try dealer.send(.usageBatch(wireBatch(sequence: 2, keys: [TestKeys.freeID, TestKeys.proID])), correlationID: 2)
                _ = try waitUntil { try blockedScriptClients(admin).count == 1 }
                var lookup = Tollgate_V1_KeyLookup()
                lookup.keyID = TestKeys.proID
                try dealer.send(.keyLookup(lookup), correlationID: 3)
                let info = try dealer.receive(timeout: .seconds(5))
                let early = try dealer.receive(timeout: .milliseconds(200))
                try admin.send("CLIENT", "UNPAUSE")
                return (info, early, try dealer.receive())
            }
            guard case .keyInfo(let keyInfo)? = info?.body else {
                Issue.record("expected KeyInfo first, got \(String(describing: info))")
                return
            }
            #expect(keyInfo.known && info?.correlationID == 3)
            #expect(ackWhilePaused == nil)
            #expect(ackStatus(ack) == .applied && ack?.correlationID == 2)
            #expect(try storedCalls(collector.redis, TestKeys.proID).calls == 3)
        }
    }

    @Test("the batch connection lost with batches in Redis: no ack, UNAVAILABLE, nothing counted; the retry counts once")
    func connectionLostMidPipeline() async throws {
        try await withCollector { collector in
            let first = try frame(.usageBatch(wireBatch(sequence: 1, keys: [TestKeys.freeID])), correlationID: 1)
            let warmUp = try await dealerExchange(collector.endpoint, send: [first], expecting: 1)
            #expect(ackStatus(warmUp.replies.first) == .applied)
            let replies = try await withStepDealer(collector.endpoint, redis: collector.redis.configuration) { dealer, admin in
                try admin.send("CLIENT", "PAUSE", 10_000, "WRITE")
                try dealer.send(.usageBatch(wireBatch(sequence: 2, keys: [TestKeys.freeID])), correlationID: 2)
                try dealer.send(.usageBatch(wireBatch(sequence: 3, keys: [TestKeys.proID])), correlationID: 3)
                guard try waitUntil({ try blockedScriptClients(admin).count == 1 }), let blocked = try blockedScriptClients(admin).first else {
                    return [Tollgate_V1_Envelope]()
                }
                // Both batches are written before Redis blocks them (one group, or the second queued behind it).
                usleep(100_000)
                try admin.send("CLIENT", "KILL", "ID", RedisArgument(blocked))
                try admin.send("CLIENT", "UNPAUSE")
                return try [dealer.receive(), dealer.receive()].compactMap { $0 }
            }
            #expect(replies.count == 2)
            for reply in replies {
                guard case .error(let error)? = reply.body else {
                    Issue.record("expected ErrorReply UNAVAILABLE, got \(reply)")
                    continue
                }
                #expect(error.code == .unavailable)
            }
            #expect(Set(replies.map(\.correlationID)) == [2, 3])
            #expect(try storedCalls(collector.redis, TestKeys.freeID).calls == 3)
            #expect(try storedCalls(collector.redis, TestKeys.proID).calls == 0)

            let retry = try await dealerExchange(collector.endpoint, send: [
                first,
                try frame(.usageBatch(wireBatch(sequence: 2, keys: [TestKeys.freeID])), correlationID: 2),
                try frame(.usageBatch(wireBatch(sequence: 3, keys: [TestKeys.proID])), correlationID: 3),
            ], expecting: 3)
            let statuses = Dictionary(uniqueKeysWithValues: retry.replies.map { ($0.correlationID, ackStatus($0)) })
            #expect(statuses == [1: .duplicate, 2: .applied, 3: .applied])
            #expect(try storedCalls(collector.redis, TestKeys.freeID).calls == 6)
            #expect(try storedCalls(collector.redis, TestKeys.proID).calls == 3)
        }
    }
}
