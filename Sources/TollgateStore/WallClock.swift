#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TollgateCore

/// The system's UTC wall clock (`CLOCK_REALTIME`), the default clock of the store.
public struct WallClock: TollgateClock {
    /// The system clock.
    public init() {}

    /// The current UTC time.
    public func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(nanosecondsSinceEpoch: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }
}
