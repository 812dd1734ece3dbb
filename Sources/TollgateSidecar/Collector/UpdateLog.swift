import Foundation
import Metrics
import TollgateWire

/// The last updates this sidecar applied (or dropped as stale), with when each was sent and when it
/// took effect here: `GET /v1/updates` on the admin port, for an operator asking "did this sidecar
/// hear about that change, and when?", and for the propagation benchmark, which reads the moment
/// each sidecar applied a change instead of polling it (polling two cores busy would slow the very
/// change it times).
///
/// Also records `tollgate_sidecar_update_lag_seconds`: from the collector's send time (the
/// envelope's, in milliseconds, on the collector's clock) to applied here. On one host the clocks
/// agree; across hosts it includes their offset.
///
/// Threading: safe from any thread (a lock around a small ring).
public final class UpdateLog: @unchecked Sendable {
    /// One update as this sidecar took it.
    public struct Entry: Sendable, Hashable {
        public var version: UInt64
        public var kind: String
        public var keyID: String
        public var feature: String
        public var plan: String
        /// When the collector sent it (Unix ms, its clock; 0 when the envelope did not say).
        public var sentAtUnixMs: Int64
        /// When it was applied here (Unix ns, this host's clock).
        public var appliedAtUnixNanos: Int64
        /// False when it was dropped as stale (an older version than the key's).
        public var applied: Bool
    }

    private let lock = NSLock()
    private var ring: [Entry] = []
    private var next = 0
    private let capacity: Int
    private let lag = Timer(label: "tollgate_sidecar_update_lag_seconds")

    /// A log keeping the last `capacity` updates.
    public init(capacity: Int = 256) {
        self.capacity = max(1, capacity)
    }

    /// Notes an update taken at `appliedAtUnixNanos`.
    func record(_ update: Tollgate_V1_QuotaUpdate, sentAtUnixMs: Int64, appliedAtUnixNanos: Int64, applied: Bool) {
        let entry = Entry(version: update.version, kind: update.kind.name, keyID: update.keyID, feature: update.feature,
                          plan: update.plan, sentAtUnixMs: sentAtUnixMs, appliedAtUnixNanos: appliedAtUnixNanos, applied: applied)
        lock.withLock {
            if ring.count < capacity {
                ring.append(entry)
            } else {
                ring[next] = entry
            }
            next = (next + 1) % capacity
        }
        if sentAtUnixMs > 0 {
            lag.recordNanoseconds(max(0, appliedAtUnixNanos - sentAtUnixMs * 1_000_000))
        }
    }

    /// The updates kept, newest first.
    public var entries: [Entry] {
        lock.withLock {
            guard ring.count == capacity else { return ring.reversed() }
            return Array((ring[next...] + ring[..<next]).reversed())
        }
    }
}
