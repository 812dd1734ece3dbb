import Testing
import TollgateCore
import TollgateSidecar

@Suite("Uplink delivery", .timeLimit(.minutes(1)))
struct UplinkDeliveryTests {
    @Test("10,000 events over 20 keys arrive exactly", arguments: [true, false])
    func exactTally(aggregate: Bool) async throws {
        try await withTemporaryDirectory { dir in
            let endpoint = try Workload.endpoint()
            let ledger = FakeLedger()
            let collector = try await FakeCollector.start(endpoint: endpoint, ledger: ledger)
            // A size bound of 1,000 (the default is 10,000), so unaggregated events fill at least 10 batches.
            let recorder = UplinkRecorder(options: UplinkRecorder.Options(aggregate: aggregate, maxAggregatesPerBatch: 1_000))
            let metrics = TestMetrics()
            let uplink = try Workload.makeUplink(
                directory: dir, endpoints: [endpoint], recorder: recorder, metrics: metrics,
                spool: SpoolOptions(fsync: aggregate ? .always : .interval(milliseconds: 20))
            )
            uplink.start()
            try await withCleanup({ try? await uplink.stop(); try? await collector.stop() }) {
                // Four concurrent recorders, as event loops would be.
                await withTaskGroup(of: Void.self) { group in
                    for part in 0 ..< 4 {
                        group.addTask { Workload.record(part * 2_500 ..< (part + 1) * 2_500, into: recorder) }
                    }
                }
                let expected = Workload.expected(0 ..< 10_000)
                #expect(try await eventually(within: 30) { ledger.totals == expected })
                #expect(try await eventually { uplink.status.unackedBatches == 0 })
                try await uplink.stop()
                #expect(ledger.totals == expected)
                #expect(ledger.mismatches == 0)
                let status = uplink.status
                #expect(status.batchesAcked == UInt64(ledger.ids.count))
                #expect(metrics.value("tollgate_uplink_batches_acked_total", [("outcome", "applied")]) == Int64(ledger.ids.count))
                #expect(metrics.value("tollgate_uplink_batches_sent_total") == Int64(ledger.ids.count))
                #expect(collector.counters["hellos"] >= 1)
                if aggregate {
                    // At most one aggregate per key per batch.
                    #expect(ledger.aggregateCount <= ledger.ids.count * Workload.keyCount)
                } else {
                    #expect(ledger.aggregateCount == 10_000)
                    #expect(ledger.ids.count >= 10)
                }
                // Sequences are 1...n in one epoch, with no gaps.
                #expect(Set(ledger.ids.map(\.epoch)) == [status.bootEpoch])
                #expect(ledger.ids.map(\.sequence).sorted() == Array(1 ... UInt64(ledger.ids.count)))
            }
        }
    }

    @Test("lost acks: batches are retried, the deduplicated tally stays exact, retries are counted")
    func lostAcks() async throws {
        try await withTemporaryDirectory { dir in
            let endpoint = try Workload.endpoint()
            let ledger = FakeLedger()
            let collector = try await FakeCollector.start(endpoint: endpoint, ledger: ledger, behaviour: .init(dropFirstAcks: 5))
            let metrics = TestMetrics()
            let uplink = try Workload.makeUplink(directory: dir, endpoints: [endpoint], metrics: metrics)
            uplink.start()
            try await withCleanup({ try? await uplink.stop(); try? await collector.stop() }) {
                for burst in 0 ..< 10 {
                    Workload.record(burst * 300 ..< (burst + 1) * 300, into: uplink.recorder)
                    try await Task.sleep(for: .milliseconds(20))
                }
                let expected = Workload.expected(0 ..< 3_000)
                #expect(try await eventually(within: 30) { ledger.totals == expected && uplink.status.unackedBatches == 0 })
                #expect(ledger.duplicates >= 1)
                #expect(ledger.mismatches == 0)
                #expect(uplink.status.batchesRetried >= 5)
                #expect(metrics.value("tollgate_uplink_batches_retried_total") >= 5)
                #expect(metrics.value("tollgate_uplink_batches_acked_total", [("outcome", "duplicate")]) >= 1)
            }
        }
    }

    @Test("collector down at start and bound later: everything is delivered")
    func collectorComesUpLater() async throws {
        try await withTemporaryDirectory { dir in
            let endpoint = try Workload.endpoint()
            let ledger = FakeLedger()
            let uplink = try Workload.makeUplink(directory: dir, endpoints: [endpoint])
            uplink.start()
            var collector: FakeCollector?
            try await withCleanup({ try? await uplink.stop(); try? await collector?.stop() }) {
                let expected = Workload.record(0 ..< 3_000, into: uplink.recorder)
                #expect(try await eventually { uplink.status.unackedBatches > 0 })
                #expect(uplink.status.isConnected == false)
                collector = try await FakeCollector.start(endpoint: endpoint, ledger: ledger)
                #expect(try await eventually(within: 30) { ledger.totals == expected && uplink.status.unackedBatches == 0 })
                #expect(try await eventually { uplink.status.isConnected })
            }
        }
    }

    @Test("two collectors, one killed mid-stream: totals are exact via the other")
    func failover() async throws {
        try await withTemporaryDirectory { dir in
            let (first, second) = (try Workload.endpoint(), try Workload.endpoint())
            let ledger = FakeLedger()
            let a = try await FakeCollector.start(endpoint: first, ledger: ledger)
            let b = try await FakeCollector.start(endpoint: second, ledger: ledger)
            let uplink = try Workload.makeUplink(directory: dir, endpoints: [first, second])
            uplink.start()
            try await withCleanup({ try? await uplink.stop(); try? await a.stop(); try? await b.stop() }) {
                var killed = false
                for burst in 0 ..< 20 {
                    Workload.record(burst * 250 ..< (burst + 1) * 250, into: uplink.recorder)
                    try await Task.sleep(for: .milliseconds(15))
                    if burst >= 9, !killed, a.counters["batches"] > 0 {
                        try await a.stop()
                        killed = true
                    }
                }
                #expect(killed)
                let expected = Workload.expected(0 ..< 5_000)
                #expect(try await eventually(within: 30) { ledger.totals == expected && uplink.status.unackedBatches == 0 })
                #expect(ledger.mismatches == 0)
                #expect(b.counters["batches"] > 0)
            }
        }
    }

    @Test("a rejected batch goes to the dead-letter file, counted, and is not retried")
    func rejected() async throws {
        try await withTemporaryDirectory { dir in
            let endpoint = try Workload.endpoint()
            let ledger = FakeLedger()
            let collector = try await FakeCollector.start(endpoint: endpoint, ledger: ledger, behaviour: .init(reject: true))
            let metrics = TestMetrics()
            let uplink = try Workload.makeUplink(directory: dir, endpoints: [endpoint], metrics: metrics)
            uplink.start()
            try await withCleanup({ try? await uplink.stop(); try? await collector.stop() }) {
                Workload.record(0 ..< 100, into: uplink.recorder)
                #expect(try await eventually { uplink.status.batchesRejected >= 1 && uplink.status.unackedBatches == 0 })
                try await uplink.stop()
                let rejected = uplink.status.batchesRejected
                #expect(uplink.status.batchesRetried == 0)
                #expect(metrics.value("tollgate_uplink_calls_rejected_total") == 100)
                #expect(ledger.ids.isEmpty)
                let spool = try Spool(directory: dir)
                defer { spool.close() }
                #expect(UInt64(try spool.deadLetters().count) == rejected)
                #expect(spool.unackedCount == 0)
            }
        }
    }
}
