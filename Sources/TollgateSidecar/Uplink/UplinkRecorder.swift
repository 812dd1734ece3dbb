import Foundation
import TollgateCore

/// Takes usage events from request handlers and folds them into batches for the uplink.
///
/// Threading: thread-safe and cheap. Every method takes one short lock and does no I/O, so NIO
/// event loops call ``record(_:extraUnits:)`` once per request. The uplink thread takes closed
/// batches out; nothing here ever blocks on the network or the disk.
///
/// ```swift
/// let recorder = UplinkRecorder(intervals: ["tokens": .month])
/// switch recorder.record(event, extraUnits: ["tokens": 532]) {
/// case .recorded, .duplicate: break
/// case .refused: return .serviceUnavailable   // spool full: fail closed
/// }
/// ```
// @unchecked Sendable: `resolveInterval` and `options` are immutable; `state` is only touched under `lock`.
public final class UplinkRecorder: @unchecked Sendable {
    /// How events become batches.
    public struct Options: Sendable, Hashable {
        /// Fold events into one aggregate per (key, feature, period); off gives one aggregate per event.
        public var aggregate: Bool = true
        /// A batch closes once it holds this many aggregates (the collector accepts up to 10,000).
        public var maxAggregatesPerBatch: Int = 10_000
        /// A batch closes at most this long after its first event...
        public var flushInterval: Duration = .milliseconds(10)
        /// ...unless the uplink is backlogged (collectors acknowledge slower than batches close):
        /// then it stays open up to this long, folding more events into each aggregate, so a busy
        /// fleet sends fewer, fuller batches. Bounds how much usage sits unspooled in memory.
        public var backlogFlushInterval: Duration = .milliseconds(100)
        /// How long a client's idempotency key is remembered.
        public var idempotencyWindow: Duration = .seconds(600)
        /// How many idempotency keys are remembered at most.
        public var idempotencyCapacity: Int = 65_536

        /// Defaults: aggregation on, 10,000 aggregates or 10 ms per batch (100 ms while backlogged),
        /// idempotency 10 min / 65,536 keys.
        public init(
            aggregate: Bool = true, maxAggregatesPerBatch: Int = 10_000, flushInterval: Duration = .milliseconds(10),
            backlogFlushInterval: Duration = .milliseconds(100)
        ) {
            self.aggregate = aggregate
            self.maxAggregatesPerBatch = max(1, maxAggregatesPerBatch)
            self.flushInterval = flushInterval
            self.backlogFlushInterval = max(flushInterval, backlogFlushInterval)
        }
    }

    /// What became of a recorded event.
    public enum RecordResult: Sendable, Hashable {
        /// Counted; it will reach the collector.
        case recorded
        /// Dropped as a repeat of an idempotency key seen within the window.
        case duplicate
        /// Not counted: the spool is full or the uplink has stopped. The caller should refuse the request.
        case refused
    }

    struct AggregateKey: Hashable {
        var key: String
        var feature: FeatureName
        var periodID: String
    }

    struct State {
        var aggregator: UsageAggregator
        var extras: [AggregateKey: [String: UInt64]] = [:]
        var unaggregated: [PendingAggregate] = []
        var periods: [ResetInterval: Period] = [:]
        var openedAt: ContinuousClock.Instant?
        var closed: [[PendingAggregate]] = []
        var full = false
        var stopped = false
        var refused: UInt64 = 0
    }

    /// The batching settings.
    public let options: Options
    private let resolveInterval: @Sendable (UsageEvent) -> ResetInterval
    private let lock = NSLock()
    private var state: State

    /// Creates a recorder that files each event under the period `interval(event)` picks.
    public init(options: Options = Options(), interval: @escaping @Sendable (UsageEvent) -> ResetInterval = { _ in .day }) {
        self.options = options
        self.resolveInterval = interval
        self.state = State(aggregator: UsageAggregator(idempotencyWindow: options.idempotencyWindow, idempotencyCapacity: options.idempotencyCapacity))
    }

    /// Creates a recorder with a reset interval per feature (`defaultInterval` for the rest).
    public convenience init(options: Options = Options(), intervals: [FeatureName: ResetInterval], defaultInterval: ResetInterval = .day) {
        self.init(options: options) { intervals[$0.feature] ?? defaultInterval }
    }

    /// True while new usage is refused because the spool is full: the proxy should fail closed.
    public var isFull: Bool { lock.withLock { state.full } }

    /// Events refused so far (full spool or stopped uplink).
    public var refusedEvents: UInt64 { lock.withLock { state.refused } }

    /// Records `event` (plus extra meters such as `tokens`) in the period its feature's interval gives.
    @discardableResult
    public func record(_ event: UsageEvent, extraUnits: [String: UInt64] = [:]) -> RecordResult {
        record(event, extraUnits: extraUnits, interval: resolveInterval(event))
    }

    /// Records `event` (plus extra meters) in the period of `interval` that contains its time.
    @discardableResult
    public func record(_ event: UsageEvent, extraUnits: [String: UInt64], interval: ResetInterval) -> RecordResult {
        lock.lock()
        defer { lock.unlock() }
        guard !state.full, !state.stopped else {
            state.refused &+= 1
            return .refused
        }
        let periodID = periodID(event.at, interval)
        if options.aggregate {
            guard state.aggregator.record(event, periodID: periodID) == .recorded else { return .duplicate }
            if state.openedAt == nil { state.openedAt = .now }
            if !extraUnits.isEmpty {
                let key = AggregateKey(key: event.key, feature: event.feature, periodID: periodID)
                state.extras[key, default: [:]].merge(extraUnits, uniquingKeysWith: UsageDelta.saturatingAdd)
            }
            if state.aggregator.count >= options.maxAggregatesPerBatch { closeCurrent() }
        } else {
            guard state.aggregator.admit(event) else { return .duplicate }
            if state.openedAt == nil { state.openedAt = .now }
            var delta = UsageDelta(key: event.key, feature: event.feature, periodID: periodID)
            delta.add(event)
            state.unaggregated.append(PendingAggregate(delta: delta, extraUnits: extraUnits))
            if state.unaggregated.count >= options.maxAggregatesPerBatch { closeCurrent() }
        }
        return .recorded
    }

    /// The period id of `at`, from a per-interval cache so most events skip the calendar maths.
    private func periodID(_ at: Timestamp, _ interval: ResetInterval) -> String {
        if let period = state.periods[interval], period.start <= at, at < period.end { return period.id }
        let period = interval.period(containing: at)
        state.periods[interval] = period
        return period.id
    }

    /// Moves the open batch to the closed list (caller holds the lock).
    private func closeCurrent() {
        var items: [PendingAggregate]
        if options.aggregate {
            items = state.aggregator.drain().map { delta in
                let key = AggregateKey(key: delta.key, feature: delta.feature, periodID: delta.periodID)
                return PendingAggregate(delta: delta, extraUnits: state.extras[key] ?? [:])
            }
            state.extras.removeAll(keepingCapacity: true)
        } else {
            items = state.unaggregated
            state.unaggregated.removeAll(keepingCapacity: true)
        }
        state.openedAt = nil
        if !items.isEmpty { state.closed.append(items) }
    }

    // MARK: For the uplink thread

    /// Closed batches, closing the open one first when its time is up or `force` is set; while
    /// `backlogged`, its time is `backlogFlushInterval` instead of `flushInterval`.
    func takeBatches(now: ContinuousClock.Instant, force: Bool, backlogged: Bool = false) -> [[PendingAggregate]] {
        let interval = backlogged ? options.backlogFlushInterval : options.flushInterval
        return lock.withLock {
            if let opened = state.openedAt, force || now - opened >= interval { closeCurrent() }
            defer { state.closed.removeAll() }
            return state.closed
        }
    }

    /// Sets whether new usage is refused because the spool is full.
    func setFull(_ full: Bool) {
        lock.withLock { state.full = full }
    }

    /// Refuses all later usage; the uplink calls it when it stops, right before its final flush.
    func stop() {
        lock.withLock { state.stopped = true }
    }
}

/// One aggregate waiting to be put in a batch: the core's delta and the extra meters beside it.
struct PendingAggregate: Sendable {
    var delta: UsageDelta
    var extraUnits: [String: UInt64]
}

extension UsageDelta {
    /// Adds without wrapping, as the core's counters do.
    static func saturatingAdd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }
}
