import ServiceLifecycle
import Testing
import TollgateCore
import TollgateSidecar

@Suite("Uplink recovery", .timeLimit(.minutes(1)))
struct UplinkRecoveryTests {
    @Test("restart: old batches keep their (epoch, sequence), new ones get a new epoch; totals exact")
    func restart() async throws {
        try await withTemporaryDirectory { dir in
            let endpoint = try Workload.endpoint()
            // First run: no collector, so nothing is acked; stop flushes the last batch into the spool.
            let first = try Workload.makeUplink(directory: dir, endpoints: [endpoint]) { $0.drainTimeout = .milliseconds(100) }
            first.start()
            let before = try await withCleanup({ try? await first.stop() }) {
                for burst in 0 ..< 5 {
                    Workload.record(burst * 400 ..< (burst + 1) * 400, into: first.recorder)
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await first.stop()
                return first.status
            }
            let oldIDs = Set((1 ..< before.nextSequence).map { BatchID(epoch: before.bootEpoch, sequence: $0) })
            #expect(oldIDs.count >= 2)
            #expect(before.unackedBatches == oldIDs.count)
            #expect(first.recorder.record(Workload.event(0).0) == .refused)  // a stopped uplink takes nothing

            // Second run on the same spool, collector still down at first.
            let second = try Workload.makeUplink(directory: dir, endpoints: [endpoint])
            second.start()
            let ledger = FakeLedger()
            var collector: FakeCollector?
            try await withCleanup({ try? await second.stop(); try? await collector?.stop() }) {
                Workload.record(2_000 ..< 3_000, into: second.recorder)
                #expect(try await eventually { second.status.bootEpoch != 0 && second.status.nextSequence > 1 })
                let epoch = second.status.bootEpoch
                #expect(epoch > before.bootEpoch)
                #expect(second.status.replay.unackedBatches == oldIDs.count)
                collector = try await FakeCollector.start(endpoint: endpoint, ledger: ledger)
                let expected = Workload.expected(0 ..< 3_000)
                #expect(try await eventually(within: 30) { ledger.totals == expected && second.status.unackedBatches == 0 })
                try await second.stop()
                let newIDs = Set((1 ..< second.status.nextSequence).map { BatchID(epoch: epoch, sequence: $0) })
                #expect(ledger.ids == oldIDs.union(newIDs))
                #expect(ledger.mismatches == 0)
                #expect(ledger.totals == expected)
            }
        }
    }

    @Test("a full spool with refuse: the recorder reports full, refuses, and loses nothing it accepted")
    func spoolFull() async throws {
        try await withTemporaryDirectory { dir in
            let endpoint = try Workload.endpoint()
            let recorder = UplinkRecorder(options: .init(maxAggregatesPerBatch: 20, flushInterval: .milliseconds(1)))
            let metrics = TestMetrics()
            let uplink = try Workload.makeUplink(
                directory: dir, endpoints: [endpoint], recorder: recorder, metrics: metrics,
                spool: SpoolOptions(segmentBytes: 2_048, maxBytes: 8_192, fsync: .never)
            )
            uplink.start()
            let ledger = FakeLedger()
            var collector: FakeCollector?
            try await withCleanup({ try? await uplink.stop(); try? await collector?.stop() }) {
                var expected: [String: Tally] = [:]
                var refused = 0
                let end = deadline(seconds: 20)
                var i = 0
                while refused == 0, ContinuousClock.now < end {
                    let (event, extra) = Workload.event(i)
                    switch recorder.record(event, extraUnits: extra) {
                    case .recorded: Workload.add(event, extra, to: &expected)
                    case .refused: refused += 1
                    case .duplicate: break
                    }
                    i += 1
                    if i % 50 == 0 { try await Task.sleep(for: .milliseconds(2)) }
                }
                #expect(refused == 1)
                #expect(recorder.isFull)
                #expect(try await eventually { uplink.status.isFull })
                #expect(metrics.value("tollgate_spool_full") == 1)
                #expect(uplink.status.spoolBytes <= 8_192)

                collector = try await FakeCollector.start(endpoint: endpoint, ledger: ledger)
                #expect(try await eventually(within: 30) { ledger.totals == expected && uplink.status.unackedBatches == 0 })
                #expect(try await eventually { !recorder.isFull && !uplink.status.isFull })
                #expect(recorder.record(Workload.event(0).0) == .recorded)
                #expect(recorder.refusedEvents == 1)
            }
        }
    }

    @Test("UplinkService: graceful shutdown flushes the open batch and drains its ack")
    func serviceShutdown() async throws {
        try await withTemporaryDirectory { dir in
            let endpoint = try Workload.endpoint()
            let ledger = FakeLedger()
            let collector = try await FakeCollector.start(endpoint: endpoint, ledger: ledger)
            // A batch would not close on time for a minute: only the shutdown flush sends it.
            let recorder = UplinkRecorder(options: .init(flushInterval: .seconds(60)))
            let uplink = try Workload.makeUplink(directory: dir, endpoints: [endpoint], recorder: recorder)
            try await withCleanup({ try? await collector.stop() }) {
                let service = UplinkService(uplink: uplink)
                let running = Task { try await service.run() }
                #expect(try await eventually { uplink.status.isRunning })
                let expected = Workload.record(0 ..< 500, into: recorder)
                try await Task.sleep(for: .milliseconds(50))
                #expect(ledger.ids.isEmpty)
                running.cancel()
                try await running.value
                #expect(ledger.totals == expected)
                #expect(uplink.status.unackedBatches == 0)
                #expect(uplink.status.isRunning == false)
            }
        }
    }
}
