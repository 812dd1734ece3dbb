import Foundation

/// The highest quota-update version a sidecar has applied, shared by the updates subscriber (which
/// raises it) and the uplink (which reports it in Hello and heartbeats, so a collector can tell a
/// sidecar that missed updates to resynchronise).
///
/// Threading: safe from any thread (a lock around one integer).
public final class UpdateVersion: @unchecked Sendable {
    private let lock = NSLock()
    private var current: UInt64 = 0

    /// Starts at 0: nothing applied.
    public init() {}

    /// The version.
    public var value: UInt64 { lock.withLock { current } }

    /// Raises the version to `version` if that is higher.
    public func raise(to version: UInt64) {
        lock.withLock { if version > current { current = version } }
    }
}
