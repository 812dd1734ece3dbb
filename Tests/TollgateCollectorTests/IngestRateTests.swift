import Testing
import TollgateCollector

@Suite("Ingest rate: a ring of (time, totals) samples")
struct IngestRateTests {
    func totals(_ calls: UInt64, _ batches: UInt64) -> IngestTotals { IngestTotals(batches: batches, calls: calls) }

    @Test("with no sample, or one under 100 ms old, the rate is zero but the totals are given")
    func noSampleYet() {
        var ring = IngestRateRing(intervalMilliseconds: 500, capacity: 8)
        let empty = ring.rate(at: 1_000, current: totals(50, 2), windowMilliseconds: 5_000)
        #expect(empty.callsPerSecond == 0 && empty.batchesPerSecond == 0 && empty.windowSeconds == 0)
        #expect(empty.callsTotal == 50 && empty.batchesTotal == 2 && empty.callsPerSecondHistory.isEmpty)
        ring.sample(at: 1_000, totals(50, 2))
        #expect(ring.rate(at: 1_050, current: totals(80, 3), windowMilliseconds: 5_000).callsPerSecond == 0)
    }

    @Test("samples closer than the interval are skipped; beyond capacity the oldest go")
    func intervalAndCapacity() {
        var ring = IngestRateRing(intervalMilliseconds: 500, capacity: 3)
        for (time, calls) in [(0, 0), (100, 10), (499, 20), (500, 30), (1_000, 40), (1_500, 50)] as [(Int64, UInt64)] {
            ring.sample(at: time, totals(calls, 0))
        }
        #expect(ring.samples.map(\.atMilliseconds) == [500, 1_000, 1_500])
        #expect(ring.samples.map(\.totals.calls) == [30, 40, 50])
    }

    @Test("the rate runs from the newest sample at least a window old to the live totals")
    func windowRate() {
        var ring = IngestRateRing(intervalMilliseconds: 500, capacity: 64)
        // 200 calls/s and 4 batches/s, steadily, sampled every second for 10 s.
        for second in 0...10 {
            ring.sample(at: Int64(second) * 1_000, totals(UInt64(second) * 200, UInt64(second) * 4))
        }
        // Then a burst: 3,000 calls in 25 batches in the half second after the last sample.
        let rate = ring.rate(at: 10_500, current: totals(2_000 + 3_000, 40 + 25), windowMilliseconds: 5_000)
        // Base: the sample at 5 s (newest at or before 10.5 − 5 = 5.5 s): (5,000 − 1,000) / 5.5 s.
        #expect(rate.windowSeconds == 5.5)
        #expect(rate.callsPerSecond == 727.3)
        #expect(rate.batchesPerSecond == 8.2)  // (65 − 20) / 5.5
        #expect(rate.callsTotal == 5_000 && rate.batchesTotal == 65)
        #expect(rate.callsPerSecondHistory == Array(repeating: 200, count: 10))
    }

    @Test("a young collector reports over the span it has, not the full window")
    func youngCollector() {
        var ring = IngestRateRing(intervalMilliseconds: 500, capacity: 64)
        ring.sample(at: 0, totals(0, 0))
        ring.sample(at: 500, totals(100, 1))
        let rate = ring.rate(at: 2_000, current: totals(400, 4), windowMilliseconds: 5_000)
        #expect(rate.windowSeconds == 2 && rate.callsPerSecond == 200 && rate.batchesPerSecond == 2)
    }

    @Test("idle after traffic: the rate falls to zero once the window holds no new calls")
    func idle() {
        var ring = IngestRateRing(intervalMilliseconds: 500, capacity: 64)
        ring.sample(at: 0, totals(0, 0))
        ring.sample(at: 1_000, totals(1_000, 10))
        for time in stride(from: Int64(1_500), through: 9_000, by: 500) { ring.sample(at: time, totals(1_000, 10)) }
        #expect(ring.rate(at: 9_000, current: totals(1_000, 10), windowMilliseconds: 5_000).callsPerSecond == 0)
    }

    @Test("IngestRate counts applied batches and their calls; tick samples them")
    func sampler() {
        let rate = IngestRate(sampleInterval: .milliseconds(1), capacity: 4, window: .seconds(5))
        rate.tick()
        rate.count(calls: 7)
        rate.count(batches: 2, calls: 5)
        let now = rate.rate()
        #expect(now.callsTotal == 12 && now.batchesTotal == 3)
        #expect(IngestRate().rate() == .zero)
    }
}
