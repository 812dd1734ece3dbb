import Testing
import TollgateCore
@testable import TollgateSidecar

@Suite("UplinkRecorder batching")
struct UplinkRecorderTests {
    let at = Timestamp(seconds: 1_795_435_200)  // 2026-11-23T12:00Z

    func event(_ key: String, idempotencyKey: String? = nil) -> UsageEvent {
        UsageEvent(key: key, requestBytes: 10, idempotencyKey: idempotencyKey, at: at)
    }

    @Test("a batch closes at flushInterval, or at backlogFlushInterval while the uplink is backlogged")
    func holdsOpenWhileBacklogged() {
        let recorder = UplinkRecorder(options: .init(flushInterval: .milliseconds(10), backlogFlushInterval: .milliseconds(100)))
        let start = ContinuousClock.now
        for index in 0..<50 { recorder.record(event("k\(index % 5)")) }
        #expect(recorder.takeBatches(now: start + .milliseconds(50), force: false, backlogged: true).isEmpty)
        for index in 0..<50 { recorder.record(event("k\(index % 5)")) }
        let closed = recorder.takeBatches(now: start + .milliseconds(150), force: false, backlogged: true)
        #expect(closed.count == 1 && closed.first?.count == 5)
        #expect(closed.first?.map(\.delta.calls).reduce(0, +) == 100)

        recorder.record(event("k1"))
        #expect(recorder.takeBatches(now: .now + .milliseconds(20), force: false, backlogged: false).first?.count == 1)
    }

    @Test("the size bound closes a batch whatever the backlog; unaggregated events keep one aggregate each and their idempotency")
    func sizeBoundAndUnaggregated() {
        let aggregated = UplinkRecorder(options: .init(maxAggregatesPerBatch: 3))
        for index in 0..<7 { aggregated.record(event("k\(index)")) }
        let sizes = aggregated.takeBatches(now: .now, force: false, backlogged: true).map(\.count)
        #expect(sizes == [3, 3])

        let raw = UplinkRecorder(options: .init(aggregate: false, maxAggregatesPerBatch: 4))
        #expect(raw.record(event("a", idempotencyKey: "i1")) == .recorded)
        #expect(raw.record(event("a", idempotencyKey: "i1")) == .duplicate)
        for _ in 0..<5 { raw.record(event("a")) }
        let batches = raw.takeBatches(now: .now, force: true)
        #expect(batches.map(\.count) == [4, 2])
        #expect(batches.joined().allSatisfy { $0.delta.calls == 1 && $0.delta.periodID == "d20261123" && $0.delta.requestBytes == 10 })
    }

    @Test("defaults: 10,000 aggregates, 10 ms, 100 ms while backlogged")
    func defaults() {
        let options = UplinkRecorder.Options()
        #expect(options.maxAggregatesPerBatch == 10_000 && options.flushInterval == .milliseconds(10))
        #expect(options.backlogFlushInterval == .milliseconds(100))
    }
}
