import Foundation
import Metrics
import TollgateStore

/// The Stripe sink's memory: which cursors may have something to send, which wait for a later
/// pass, what is pending and how far behind each cursor is. Losing all of it loses nothing: the
/// counters and cursors in Redis are the truth, and the start-up scan finds every cursor again.
///
/// Threading: safe from any thread (one lock around small collections).
// @unchecked Sendable: every property is only touched under `lock`.
final class StripeSinkState: @unchecked Sendable {
    private let lock = NSLock()
    private var dirty: Set<MeterCursorID> = []
    private var parked: [MeterCursorID: ContinuousClock.Instant] = [:]
    private var lag: [MeterCursorID: UInt64] = [:]
    private var pending: Set<MeterCursorID> = []
    private var rescanWanted = false
    private let maxDirty: Int
    private let lagGauge = Gauge(label: SinkMetricName.stripeLag)
    private let pendingGauge = Gauge(label: SinkMetricName.stripePending)

    /// State holding at most `maxDirty` dirty cursors; past that it asks for a rescan instead.
    init(maxDirty: Int) {
        self.maxDirty = maxDirty
    }

    /// Notes that `cursor`'s counter may have grown.
    func markDirty(_ cursor: MeterCursorID) {
        self.lock.withLock {
            guard self.dirty.count < self.maxDirty || self.dirty.contains(cursor) else {
                self.rescanWanted = true
                return
            }
            self.dirty.insert(cursor)
        }
    }

    /// Takes the dirty cursors and the parked ones whose time has come.
    func takeDue(now: ContinuousClock.Instant) -> [MeterCursorID] {
        self.lock.withLock {
            var due = self.dirty
            self.dirty.removeAll(keepingCapacity: true)
            for (cursor, time) in self.parked where time <= now {
                due.insert(cursor)
                self.parked[cursor] = nil
            }
            return Array(due)
        }
    }

    /// Comes back to `cursor` no earlier than `time` (unless it is marked dirty first).
    func park(_ cursor: MeterCursorID, until time: ContinuousClock.Instant) {
        self.lock.withLock {
            if let existing = self.parked[cursor], existing <= time { return }
            self.parked[cursor] = time
        }
    }

    /// Whether a rescan was asked for (the dirty set overflowed); clears the request.
    func takeRescanRequest() -> Bool {
        self.lock.withLock {
            defer { self.rescanWanted = false }
            return self.rescanWanted
        }
    }

    /// Records what the last claim of `cursor` said: `behind` units not yet acknowledged, and
    /// whether a range is pending.
    func record(_ cursor: MeterCursorID, behind: UInt64, pending isPending: Bool) {
        let (lag, pending) = self.lock.withLock {
            self.lag[cursor] = behind == 0 ? nil : behind
            if isPending { self.pending.insert(cursor) } else { self.pending.remove(cursor) }
            return (self.lag.values.reduce(0, &+), self.pending.count)
        }
        self.lagGauge.record(Int64(clamping: lag))
        self.pendingGauge.record(pending)
    }

    /// Cursors marked dirty or parked (for tests and shutdown logs).
    var waiting: Int { self.lock.withLock { self.dirty.count + self.parked.count } }
}
