import Foundation
import TollgateCore

/// A clock tests move by hand, shared between components (a collector and a sidecar's gate).
///
/// Threading: safe from any thread (a lock around one timestamp).
public final class TestClock: TollgateClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Timestamp

    /// A clock reading `start`.
    public init(_ start: Timestamp) {
        self.current = start
    }

    /// The time it reads.
    public func now() -> Timestamp { lock.withLock { current } }

    /// Moves it on by `duration`.
    public func advance(by duration: Duration) {
        lock.withLock { current = current.advanced(byNanoseconds: duration.saturatingNanoseconds) }
    }
}
