import Foundation
import Logging
import Testing
import TollgateCollector
import TollgateConfig
import TollgateCore
import TollgateStore

/// The JSONL audit log and the fan-out that feeds it.
@Suite("Audit log and sink fan-out", .serialized)
struct AuditLogSinkTests {
    static let key = String(repeating: "c", count: 64)

    func batch(_ sequence: UInt64, duplicate: Bool = false) -> AppliedBatch {
        let aggregate = UsageAggregateRecord(keyID: Self.key, feature: "api_call", periodID: "d20261123", counters: UsageCounters(
            calls: 3, units: 3, statuses: StatusCounts(success: 2, clientError: 1), requestBytes: 30, responseBytes: 300
        ))
        return AppliedBatch(
            collectorID: "collector-test", batch: UsageBatchRecord(sidecarID: "sc:1", bootEpoch: 9, sequence: sequence, aggregates: [aggregate]),
            duplicateKeyIDs: duplicate ? [Self.key] : [], appliedAt: Timestamp(seconds: 1_795_435_200)
        )
    }

    func withDirectory(_ body: (URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-audit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory)
    }

    func lines(_ path: String) throws -> [[String: Any]] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TestFailure("not a JSON object: \(line)")
            }
            return object
        }
    }

    @Test("every batch and settlement is one parseable line; the log rotates by size and keeps `files` old files")
    func rotation() async throws {
        _ = TestMetrics.shared
        try await withDirectory { directory in
            var settings = AuditLogSettings(path: directory.appendingPathComponent("audit.jsonl").path)
            settings.maxBytes = 4_096
            settings.files = 2
            let audit = AuditLogSink(settings: settings, logger: Logger(label: "audit-test"))
            try audit.open()
            let fanOut = SinkFanOut(sinks: [audit], capacity: 1_000, logger: Logger(label: "audit-test"))
            fanOut.start()
            let delivered = Counted()
            for sequence in 1...200 {
                #expect(fanOut.offer(.applied(self.batch(UInt64(sequence), duplicate: sequence == 200))) { delivered.add() })
            }
            let settlement = SettlementRecord(
                keyID: Self.key, claimID: "claim-1", payer: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", amountAtomic: 10_000,
                asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", network: "eip155:84532", transaction: "0xabc",
                route: "GET /v1/echo", feature: "api_call", periodID: "d20261123", creditedUnits: 3, grant: "units:3"
            )
            #expect(fanOut.offer(.settled(SettlementEvent(collectorID: "collector-test", record: settlement, recordedAt: Timestamp(seconds: 1)))))
            await fanOut.stop()
            #expect(delivered.value == 200)
            #expect(!fanOut.offer(.applied(self.batch(201))))
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            #expect(files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"])
            var all: [[String: Any]] = []
            for name in ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"] {
                let path = directory.appendingPathComponent(name).path
                #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0 <= 4_096)
                all += try self.lines(path)
            }
            // The oldest lines were rotated away; what is kept is the newest, in order, without a gap.
            let sequences = all.compactMap { $0["seq"] as? Int }
            #expect(sequences.last == 200 && sequences == Array((200 - sequences.count + 1)...200))
            let first = try #require(all.first { $0["type"] as? String == "batch" })
            #expect(first["sidecar"] as? String == "sc:1" && first["epoch"] as? Int == 9 && first["outcome"] as? String == "applied")
            let aggregate = try #require((first["aggregates"] as? [[String: Any]])?.first)
            #expect(aggregate["key"] as? String == Self.key && aggregate["calls"] as? Int == 3 && aggregate["new"] as? Bool == true)
            #expect((aggregate["status"] as? [String: Int]) == ["1xx": 0, "2xx": 2, "3xx": 0, "4xx": 1, "5xx": 0])
            let duplicate = try #require(all.first { $0["seq"] as? Int == 200 })
            #expect(duplicate["outcome"] as? String == "duplicate")
            let last = try #require(all.last)
            #expect(last["type"] as? String == "settlement" && last["amount"] as? Int == 10_000 && last["tx"] as? String == "0xabc")
        }
    }

    @Test("a torn last line is closed off, so the next line still parses")
    func tornLine() async throws {
        try await withDirectory { directory in
            let path = directory.appendingPathComponent("audit.jsonl").path
            try Data("{\"type\":\"batch\",\"seq\":1}\n{\"type\":\"ba".utf8).write(to: URL(fileURLWithPath: path))
            let audit = AuditLogSink(settings: AuditLogSettings(path: path), logger: Logger(label: "audit-test"))
            try audit.open()
            audit.applied(self.batch(2))
            audit.close()
            let text = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            #expect(text.count == 3)
            #expect(try JSONSerialization.jsonObject(with: Data(text[2].utf8)) is [String: Any])
        }
    }

    @Test("an audit path that cannot be opened is an error at start")
    func badPath() {
        let audit = AuditLogSink(settings: AuditLogSettings(path: "/nonexistent-dir/for/sure/audit.jsonl"), logger: Logger(label: "audit-test"))
        #expect(throws: AuditLogError.self) { try audit.open() }
        audit.close()
    }

    @Test("a full queue drops the event, counts it, and never blocks the caller")
    func overflow() async throws {
        _ = TestMetrics.shared
        let gate = BlockingSink()
        let fanOut = SinkFanOut(sinks: [gate], capacity: 2, logger: Logger(label: "fanout-test"))
        fanOut.start()
        let before = TestMetrics.shared.value(SinkMetricName.dropped, [("reason", "queue_full")])
        #expect(fanOut.offer(.applied(self.batch(1))))
        // Wait until the sink thread holds the first event, so the queue is empty again.
        for _ in 0..<200 where !gate.entered { try await Task.sleep(for: .milliseconds(5)) }
        #expect(fanOut.offer(.applied(self.batch(2))))
        #expect(fanOut.offer(.applied(self.batch(3))))
        let start = ContinuousClock.now
        #expect(!fanOut.offer(.applied(self.batch(4))))
        #expect(ContinuousClock.now - start < .milliseconds(50))
        #expect(TestMetrics.shared.value(SinkMetricName.dropped, [("reason", "queue_full")]) == before + 1)
        gate.open()
        await fanOut.stop()
        #expect(gate.sequences == [1, 2, 3])
    }
}

/// A sink whose first delivery blocks until `open()`.
// @unchecked Sendable: every property is only touched under `condition`'s lock.
final class BlockingSink: UsageSink, @unchecked Sendable {
    let name = "blocking"
    private let condition = NSCondition()
    private var isOpen = false
    private var seen: [UInt64] = []
    private var didEnter = false

    var entered: Bool { self.condition.withLock { self.didEnter } }
    var sequences: [UInt64] { self.condition.withLock { self.seen } }

    func open() {
        self.condition.withLock {
            self.isOpen = true
            self.condition.broadcast()
        }
    }

    func applied(_ batch: AppliedBatch) {
        self.condition.withLock {
            self.didEnter = true
            while !self.isOpen { self.condition.wait() }
            self.seen.append(batch.batch.sequence)
        }
    }

    func settled(_ settlement: SettlementEvent) {}
    func close() {}
}

/// A thread-safe counter.
// @unchecked Sendable: `count` is only touched under `lock`.
final class Counted: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { self.lock.withLock { self.count += 1 } }
    var value: Int { self.lock.withLock { self.count } }
}

/// A failed expectation that needs to stop the test.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
