import Foundation

/// Running totals of the usage this collector applied, sampled over time so the dashboard can say
/// how fast it ingests (calls/s and batches/s over the last few seconds).
///
/// Threading: `Sendable`. The ingest thread calls `count` for every applied batch and `tick` on
/// every turn of its loop (at least every poll interval); any thread reads `rate()`. Each call
/// takes one short lock. Time is the monotonic clock, so a wall-clock step never skews a rate.
// @unchecked Sendable: `totals` and `ring` are only touched under `lock`; the rest is immutable.
public final class IngestRate: @unchecked Sendable {
    private let lock = NSLock()
    private let origin = ContinuousClock.now
    private let window: Duration
    private var totals = IngestTotals()
    private var ring: IngestRateRing

    /// A sampler keeping `capacity` samples taken at least `sampleInterval` apart; rates are over `window`.
    public init(sampleInterval: Duration = .milliseconds(500), capacity: Int = 64, window: Duration = .seconds(5)) {
        self.window = window
        self.ring = IngestRateRing(intervalMilliseconds: Self.milliseconds(sampleInterval), capacity: capacity)
    }

    /// Adds one applied batch carrying `calls` calls.
    public func count(batches: UInt64 = 1, calls: UInt64) {
        self.lock.withLock {
            self.totals.batches &+= batches
            self.totals.calls &+= calls
        }
    }

    /// Takes a sample when the last one is at least the sample interval old.
    public func tick() {
        let now = self.elapsedMilliseconds()
        self.lock.withLock { self.ring.sample(at: now, self.totals) }
    }

    /// The rates over the last `window` (or as much of it as was sampled), with the totals and recent history.
    public func rate() -> IngestRateRing.Rate {
        let now = self.elapsedMilliseconds()
        return self.lock.withLock {
            self.ring.rate(at: now, current: self.totals, windowMilliseconds: Self.milliseconds(self.window))
        }
    }

    private func elapsedMilliseconds() -> Int64 {
        Self.milliseconds(ContinuousClock.now - self.origin)
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Totals of applied usage: batches and the calls they carried.
public struct IngestTotals: Sendable, Hashable {
    /// Batches applied (not duplicates).
    public var batches: UInt64 = 0
    /// Calls in those batches.
    public var calls: UInt64 = 0

    /// Totals with the given counts.
    public init(batches: UInt64 = 0, calls: UInt64 = 0) {
        self.batches = batches
        self.calls = calls
    }
}

/// A bounded ring of `(time, totals)` samples and the rate arithmetic over it. Pure: time is passed in
/// as milliseconds on any monotonic scale.
public struct IngestRateRing: Sendable {
    /// One sample.
    public struct Sample: Sendable, Hashable {
        /// When it was taken, milliseconds.
        public var atMilliseconds: Int64
        /// The totals then.
        public var totals: IngestTotals
    }

    /// Rates over a window, as the dashboard shows them.
    public struct Rate: Sendable, Hashable, Codable {
        /// Calls applied per second over the window.
        public var callsPerSecond: Double
        /// Batches applied per second over the window.
        public var batchesPerSecond: Double
        /// The span the rates cover, seconds (shorter than asked while the collector is young).
        public var windowSeconds: Double
        /// Calls applied since the collector started.
        public var callsTotal: UInt64
        /// Batches applied since the collector started.
        public var batchesTotal: UInt64
        /// Calls per second between consecutive samples, oldest first (for a sparkline).
        public var callsPerSecondHistory: [Double]

        /// Nothing sampled, nothing counted.
        public static let zero = Rate(
            callsPerSecond: 0, batchesPerSecond: 0, windowSeconds: 0, callsTotal: 0, batchesTotal: 0, callsPerSecondHistory: []
        )
    }

    /// Least time between two samples, milliseconds.
    public let intervalMilliseconds: Int64
    /// Most samples kept.
    public let capacity: Int
    /// The samples, oldest first.
    public private(set) var samples: [Sample] = []

    /// An empty ring.
    public init(intervalMilliseconds: Int64, capacity: Int) {
        self.intervalMilliseconds = max(1, intervalMilliseconds)
        self.capacity = max(2, capacity)
    }

    /// Records `totals` at `now` unless the last sample is younger than the interval; drops the oldest beyond capacity.
    public mutating func sample(at now: Int64, _ totals: IngestTotals) {
        if let last = self.samples.last, now - last.atMilliseconds < self.intervalMilliseconds { return }
        self.samples.append(Sample(atMilliseconds: now, totals: totals))
        if self.samples.count > self.capacity { self.samples.removeFirst(self.samples.count - self.capacity) }
    }

    /// The rates from the newest sample at least `windowMilliseconds` old (or the oldest there is) to `current` at `now`.
    ///
    /// Zero rates when there is no sample yet or it is under 100 ms old (too short to say anything).
    public func rate(at now: Int64, current: IngestTotals, windowMilliseconds: Int64) -> Rate {
        let cutoff = now - windowMilliseconds
        let base = self.samples.last { $0.atMilliseconds <= cutoff } ?? self.samples.first
        var rate = Rate.zero
        rate.callsTotal = current.calls
        rate.batchesTotal = current.batches
        var history: [Double] = []
        for (earlier, later) in zip(self.samples, self.samples.dropFirst()) {
            history.append(Self.perSecond(from: earlier.totals.calls, to: later.totals.calls,
                                          milliseconds: later.atMilliseconds - earlier.atMilliseconds))
        }
        rate.callsPerSecondHistory = history
        guard let base, now - base.atMilliseconds >= 100 else { return rate }
        let span = now - base.atMilliseconds
        rate.windowSeconds = Double(span) / 1_000
        rate.callsPerSecond = Self.perSecond(from: base.totals.calls, to: current.calls, milliseconds: span)
        rate.batchesPerSecond = Self.perSecond(from: base.totals.batches, to: current.batches, milliseconds: span)
        return rate
    }

    /// `(to - from)` per second over `milliseconds`, rounded to a tenth; 0 when the span is empty or totals went back.
    static func perSecond(from: UInt64, to: UInt64, milliseconds: Int64) -> Double {
        guard milliseconds > 0, to >= from else { return 0 }
        let value = Double(to - from) * 1_000 / Double(milliseconds)
        return (value * 10).rounded() / 10
    }
}
