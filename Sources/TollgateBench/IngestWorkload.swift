import ArgumentParser
import Foundation
import TollgateCore
import TollgateSidecar

#if canImport(Glibc)
import Glibc
import TollgateTestSupport
#endif

/// How the benchmark picks the key of each event.
enum KeyDistribution: String, CaseIterable, ExpressibleByArgument {
    /// Each event's key drawn uniformly at random (seeded): what a busy gateway with many similar clients sees.
    case uniform
    /// Keys in turn: the worst case for aggregation when `keys` equals the batch's aggregate limit.
    case roundRobin = "round-robin"
}

/// The sums a run must find in Redis: every counter the events add, totalled on the producing side.
struct ExpectedTotals: Equatable, CustomStringConvertible {
    var calls: UInt64 = 0
    var units: UInt64 = 0
    var success: UInt64 = 0
    var requestBytes: UInt64 = 0
    var responseBytes: UInt64 = 0
    var latencySumMicroseconds: UInt64 = 0

    mutating func add(_ other: ExpectedTotals) {
        self.calls += other.calls
        self.units += other.units
        self.success += other.success
        self.requestBytes += other.requestBytes
        self.responseBytes += other.responseBytes
        self.latencySumMicroseconds += other.latencySumMicroseconds
    }

    var description: String {
        "calls=\(calls) units=\(units) s2xx=\(success) req_bytes=\(requestBytes) resp_bytes=\(responseBytes) lat_sum_us=\(latencySumMicroseconds)"
    }
}

/// What the producer threads did.
struct ProducerReport {
    /// Sums of the events recorded.
    var totals = ExpectedTotals()
    /// Events the recorder refused or dropped as duplicates (must be 0).
    var notRecorded = 0
    /// CPU seconds the producer threads used, measured on each thread.
    var cpuSeconds = 0.0
}

/// Generates usage events and records them from dedicated threads, as fast as the recorder takes them.
///
/// Threading: `produce` starts `producers` OS threads (never the cooperative pool: they spin for
/// seconds) and resumes its caller once all have finished.
struct IngestWorkload: Sendable {
    /// Key ids: 64 lowercase hex characters each, fresh per run so runs on one server never mix.
    let keyIDs: [String]
    let distribution: KeyDistribution
    /// The time every event carries; its day is the period the counters land in.
    let at: Timestamp
    let seed: UInt64

    /// `count` random 64-character hex key ids.
    static func makeKeyIDs(count: Int) -> [String] {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef")
        return (0..<count).map { _ in String((0..<64).map { _ in digits[Int(generator.next() & 15)] }) }
    }

    /// Records `events` events into `recorder` from `producers` threads (events split evenly).
    func produce(events: Int, producers: Int, into recorder: UplinkRecorder) async -> ProducerReport {
        await withCheckedContinuation { (continuation: CheckedContinuation<ProducerReport, Never>) in
            let collected = ReportCollector(expected: producers, continuation: continuation)
            for index in 0..<producers {
                let share = events / producers + (index < events % producers ? 1 : 0)
                let first = index * (events / producers) + min(index, events % producers)
                let thread = Thread {
                    ThreadName.currentID().map { ThreadName.set($0, "bench-producer") }
                    collected.add(self.run(index: index, first: first, count: share, recorder: recorder))
                }
                thread.start()
            }
        }
    }

    /// One producer's loop: `count` events, the `first`-th event of the run onwards.
    private func run(index: Int, first: Int, count: Int, recorder: UplinkRecorder) -> ProducerReport {
        var report = ProducerReport()
        var random = SplitMix64(seed: self.seed &+ UInt64(index) &* 0x9E37_79B9)
        let keyCount = UInt64(self.keyIDs.count)
        for offset in 0..<count {
            let bits = random.next()
            let key = self.distribution == .uniform ? Int(bits % keyCount) : (first + offset) % self.keyIDs.count
            let latencyMicroseconds = (bits >> 32) & 1_023
            let requestBytes = (bits >> 42) & 511
            let event = UsageEvent(
                key: self.keyIDs[key], feature: .apiCall, units: 1, statusClass: .success,
                latency: .microseconds(latencyMicroseconds), requestBytes: requestBytes, responseBytes: 1_024, at: self.at
            )
            guard recorder.record(event) == .recorded else {
                report.notRecorded += 1
                continue
            }
            report.totals.calls += 1
            report.totals.units += 1
            report.totals.success += 1
            report.totals.requestBytes += requestBytes
            report.totals.responseBytes += 1_024
            report.totals.latencySumMicroseconds += latencyMicroseconds
        }
        report.cpuSeconds = ThreadCPU.currentThreadSeconds()
        return report
    }
}

/// Gathers the producers' reports and resumes the waiter once the last one is in.
// @unchecked Sendable: `report`, `remaining` and `continuation` are only touched under `lock`.
private final class ReportCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var report = ProducerReport()
    private var remaining: Int
    private var continuation: CheckedContinuation<ProducerReport, Never>?

    init(expected: Int, continuation: CheckedContinuation<ProducerReport, Never>) {
        self.remaining = expected
        self.continuation = continuation
    }

    func add(_ part: ProducerReport) {
        let done: (CheckedContinuation<ProducerReport, Never>, ProducerReport)? = self.lock.withLock {
            self.report.totals.add(part.totals)
            self.report.notRecorded += part.notRecorded
            self.report.cpuSeconds += part.cpuSeconds
            self.remaining -= 1
            guard self.remaining == 0, let continuation = self.continuation else { return nil }
            self.continuation = nil
            return (continuation, self.report)
        }
        if let (continuation, report) = done { continuation.resume(returning: report) }
    }
}

