import Testing
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

@Suite("UsageStore refuses bad input")
struct ValidationTests {
    struct BadBatch: Sendable, CustomTestStringConvertible {
        var name: String
        var batch: UsageBatchRecord
        var testDescription: String { self.name }
    }

    static let good = aggregate(keyID(1), calls: 1)

    static func with(_ change: (inout UsageAggregateRecord) -> Void) -> UsageBatchRecord {
        var bad = good
        change(&bad)
        return UsageBatchRecord(sidecarID: "sc", bootEpoch: 1, sequence: 1, aggregates: [good, bad])
    }

    static let cases: [BadBatch] = [
        BadBatch(name: "empty sidecar id", batch: UsageBatchRecord(sidecarID: "", bootEpoch: 1, sequence: 1, aggregates: [good])),
        BadBatch(name: "sidecar id with a brace", batch: UsageBatchRecord(sidecarID: "a}b", bootEpoch: 1, sequence: 1, aggregates: [good])),
        BadBatch(name: "sidecar id with a newline", batch: UsageBatchRecord(sidecarID: "a\nb", bootEpoch: 1, sequence: 1, aggregates: [good])),
        BadBatch(name: "too many aggregates", batch: UsageBatchRecord(sidecarID: "sc", bootEpoch: 1, sequence: 1,
                                                                      aggregates: Array(repeating: good, count: 10_001))),
        BadBatch(name: "empty key id", batch: with { $0.keyID = "" }),
        BadBatch(name: "key id with a brace", batch: with { $0.keyID = "k{1" }),
        BadBatch(name: "overlong key id", batch: with { $0.keyID = String(repeating: "a", count: 129) }),
        BadBatch(name: "empty feature", batch: with { $0.feature = "" }),
        BadBatch(name: "feature with a colon", batch: with { $0.feature = "a:b" }),
        BadBatch(name: "feature with a space", batch: with { $0.feature = "a b" }),
        BadBatch(name: "empty period", batch: with { $0.periodID = "" }),
        BadBatch(name: "period that is no period", batch: with { $0.periodID = "d20260230" }),
        BadBatch(name: "period of garbage", batch: with { $0.periodID = "yesterday" }),
        BadBatch(name: "counter too large", batch: with { $0.counters.calls = .max }),
        BadBatch(name: "latency max too large", batch: with { $0.counters.latencyMaxMicroseconds = .max }),
        BadBatch(name: "extra unit with a newline", batch: with { $0.counters.extraUnits = ["tok\nens": 1] }),
        BadBatch(name: "too many extra units", batch: with { agg in
            for index in 0..<33 { agg.counters.extraUnits["m\(index)"] = 1 }
        }),
    ]

    @Test("a bad batch is refused as invalid input and writes nothing", arguments: cases)
    func refused(_ bad: BadBatch) throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let error = #expect(throws: StoreError.self) { try makeStore().apply(bad.batch, on: connection) }
                #expect(error?.code == .invalidInput)
                #expect(try connection.send("DBSIZE").expectInteger() == 0)
            }
        }
    }

    @Test("every period kind of the core is accepted")
    func periodKinds() throws {
        for interval in [ResetInterval.minute, .hour, .day, .week, .month, .billingCycle(anchor: Timestamp(seconds: 1_769_817_600))] {
            let id = interval.period(containing: testNow).id
            try aggregate(keyID(1), period: id, calls: 1).validate()
        }
    }

    @Test("queries with bad names are refused")
    func badQueries() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                #expect(throws: StoreError.self) { try makeStore().usage(keyID: "a}", feature: "api_call", periodID: "d20261123", on: connection) }
                #expect(throws: StoreError.self) { try makeStore().usage(keyID: keyID(1), periodID: "d2026:1123", on: connection) }
            }
        }
    }
}
