import Foundation

/// The sidecar's one table of cached keys, shared by the key directory and the quota gate: each
/// key's id, its index entry and its row are stored once, with the directory's answer (name, plan,
/// version) and the gate's state (leases, figures) side by side.
///
/// Threading: safe from any thread; everything in it is only touched under `lock`, which the
/// directory's reads and the gate's decisions both take (each for a probe and a few words).
///
/// ```swift
/// let cache = KeyCache()
/// let directory = KeyDirectory(channel: channel, cache: cache)
/// let gate = QuotaGate(transport: channel, cache: cache) { (sidecarID, bootEpoch) }
/// ```
public final class KeyCache: @unchecked Sendable {
    // @unchecked Sendable: `state` is only touched under `lock`.
    let lock = NSLock()
    /// The rows, and the gate's bookkeeping around them.
    var state = GateState()

    /// An empty cache.
    public init() {}

    /// Keys cached, by the directory or the gate (one row each).
    public var count: Int { lock.withLock { state.keys.count } }
}
