import Foundation

/// A small thread-safe memo: values computed from a key, kept until `capacity` entries are held,
/// then all dropped at once (the next lookups recompute them).
///
/// For work that is pure in its key and repeats a lot, such as decoding the same plan JSON on
/// every registry lookup or the same payment header on each step of one payment. Never for
/// anything whose answer may change while its key stays the same.
///
/// Threading: safe from any thread; one lock around a dictionary. `compute` runs outside the lock,
/// so two threads may compute the same value once each.
public final class BoundedMemo<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `entries` is only touched under `lock`.
    private let lock = NSLock()
    private var entries: [Key: Value] = [:]
    private let capacity: Int

    /// A memo of at most `capacity` entries (at least 1).
    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// The value for `key`, computed by `compute` the first time (a throw stores nothing).
    public func value<E: Error>(for key: Key, _ compute: () throws(E) -> Value) throws(E) -> Value {
        if let known = lock.withLock({ entries[key] }) { return known }
        let value = try compute()
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = value
        }
        return value
    }

    /// How many values are held.
    public var count: Int { lock.withLock { entries.count } }
}
