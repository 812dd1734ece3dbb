import Foundation
import TollgateCore

/// What the collector last heard from one sidecar.
public struct SidecarStatus: Sendable, Hashable {
    /// The sidecar's stable id.
    public var sidecarID: String
    /// Its current boot epoch.
    public var bootEpoch: UInt64
    /// When a Hello or Heartbeat last arrived.
    public var lastSeen: Timestamp
    /// Spooled records not yet acknowledged.
    public var spoolRecords: UInt64
    /// Bytes in its spool.
    public var spoolBytes: UInt64
    /// Batches sent and not yet acknowledged.
    public var unackedBatches: UInt64
    /// The last update version it applied.
    public var lastUpdateVersion: UInt64
    /// The software version it announced in Hello, if any.
    public var softwareVersion: String?
}

/// The collector's in-memory view of its sidecars, fed by Hello and Heartbeat.
///
/// Threading: `Sendable`; the ingest thread writes, any thread (the HTTP API) reads snapshots.
/// A sidecar counts as connected while it was heard from within `staleAfter`.
// @unchecked Sendable: `sidecars` is only touched under `lock`; `staleAfter` is immutable.
public final class FleetTable: @unchecked Sendable {
    /// How long after its last message a sidecar still counts as connected.
    public let staleAfter: Duration
    private let lock = NSLock()
    private var sidecars: [String: SidecarStatus] = [:]

    /// An empty table; default `staleAfter` 5 s (five default heartbeats).
    public init(staleAfter: Duration = .seconds(5)) {
        self.staleAfter = staleAfter
    }

    /// Records a status, replacing the sidecar's previous one (fields a Hello lacks are kept).
    public func record(_ status: SidecarStatus) {
        self.lock.withLock {
            var merged = status
            if let old = self.sidecars[status.sidecarID], old.bootEpoch == status.bootEpoch {
                merged.softwareVersion = status.softwareVersion ?? old.softwareVersion
            }
            self.sidecars[status.sidecarID] = merged
        }
    }

    /// Every sidecar ever heard from, sorted by id.
    public func snapshot() -> [SidecarStatus] {
        self.lock.withLock { self.sidecars.values.sorted { $0.sidecarID < $1.sidecarID } }
    }

    /// The sidecars heard from within `staleAfter` before `now`, sorted by id.
    public func connected(at now: Timestamp) -> [SidecarStatus] {
        let cutoff = now - self.staleAfter
        return self.snapshot().filter { $0.lastSeen >= cutoff }
    }

    /// The status of one sidecar, if it was ever heard from.
    public func status(of sidecarID: String) -> SidecarStatus? {
        self.lock.withLock { self.sidecars[sidecarID] }
    }
}
