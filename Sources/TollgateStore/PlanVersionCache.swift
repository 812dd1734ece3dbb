import Foundation

/// Stored plans' JSON by plan name and registry version, held for a short while: a key lookup then
/// reads Redis once (the key's record and `tg:version`, pipelined), not twice (and the plan after).
///
/// Sound because every plan write lands before the `INCR tg:version` that announces it
/// (`KeyRegistry.load`, `upsertPlan`). Whatever a lookup reads for a plan after reading version V
/// is the plan as of V or newer, so what is kept under V is never older than V's plan, and a
/// change is a new version, which misses. The time bound covers what versions cannot: a Redis
/// that lost its data and counts versions again from the start.
///
/// Threading: safe from any thread; one lock around a small dictionary. A fetch runs outside it.
final class PlanVersionCache: @unchecked Sendable {
    // @unchecked Sendable: `entries` is only touched under `lock`.
    private struct Key: Hashable {
        var name: String
        var version: UInt64
    }

    private struct Held {
        var bytes: [UInt8]?
        var until: UInt64
    }

    private let lock = NSLock()
    private var entries: [Key: Held] = [:]
    private let capacity: Int
    private let lifetimeNanoseconds: UInt64

    /// A cache of at most `capacity` plans, each kept for `lifetime` at most.
    init(capacity: Int = 256, lifetime: Duration = .seconds(1)) {
        self.capacity = max(1, capacity)
        let (seconds, attoseconds) = lifetime.components
        self.lifetimeNanoseconds = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }

    /// The plan `name`'s JSON as of `version` (nil: no such plan), fetched by `fetch` when not held.
    func bytes(named name: String, version: UInt64, now: UInt64 = DispatchTime.now().uptimeNanoseconds,
               _ fetch: () throws(StoreError) -> [UInt8]?) throws(StoreError) -> [UInt8]? {
        let key = Key(name: name, version: version)
        if let held = lock.withLock({ entries[key] }), held.until > now { return held.bytes }
        let bytes = try fetch()
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = Held(bytes: bytes, until: now + lifetimeNanoseconds)
        }
        return bytes
    }
}
