/// A point in time: signed nanoseconds since 1970-01-01T00:00:00Z (UTC, no leap seconds).
///
/// Int64 nanoseconds cover 1677-09-21 to 2262-04-11, which is all Tollgate ever meets. Arithmetic
/// saturates at the ends of that range instead of trapping, because timestamps come from the network.
public struct Timestamp: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Nanoseconds since the Unix epoch.
    public var nanosecondsSinceEpoch: Int64

    /// Nanoseconds in one second.
    public static let nanosecondsPerSecond: Int64 = 1_000_000_000
    /// Nanoseconds in one millisecond.
    public static let nanosecondsPerMillisecond: Int64 = 1_000_000

    /// The Unix epoch, 1970-01-01T00:00:00Z.
    public static let epoch = Timestamp(nanosecondsSinceEpoch: 0)
    /// The earliest representable timestamp.
    public static let min = Timestamp(nanosecondsSinceEpoch: .min)
    /// The latest representable timestamp.
    public static let max = Timestamp(nanosecondsSinceEpoch: .max)

    /// Creates a timestamp from nanoseconds since the epoch.
    public init(nanosecondsSinceEpoch: Int64) {
        self.nanosecondsSinceEpoch = nanosecondsSinceEpoch
    }

    /// Creates a timestamp from nanoseconds since the epoch.
    public init(nanoseconds: Int64) {
        self.nanosecondsSinceEpoch = nanoseconds
    }

    /// Creates a timestamp from whole seconds since the epoch (saturating).
    public init(seconds: Int64) {
        self.nanosecondsSinceEpoch = Timestamp.saturatingMultiply(seconds, Timestamp.nanosecondsPerSecond)
    }

    /// Creates a timestamp from milliseconds since the epoch (saturating).
    public init(milliseconds: Int64) {
        self.nanosecondsSinceEpoch = Timestamp.saturatingMultiply(milliseconds, Timestamp.nanosecondsPerMillisecond)
    }

    /// Whole seconds since the epoch, rounded towards negative infinity.
    public var seconds: Int64 { Timestamp.floorDivide(nanosecondsSinceEpoch, Timestamp.nanosecondsPerSecond) }

    /// Whole milliseconds since the epoch, rounded towards negative infinity.
    public var milliseconds: Int64 { Timestamp.floorDivide(nanosecondsSinceEpoch, Timestamp.nanosecondsPerMillisecond) }

    /// This timestamp moved by `nanoseconds` (saturating).
    public func advanced(byNanoseconds nanoseconds: Int64) -> Timestamp {
        Timestamp(nanosecondsSinceEpoch: Timestamp.saturatingAdd(nanosecondsSinceEpoch, nanoseconds))
    }

    /// This timestamp moved by `seconds` whole seconds (saturating).
    public func advanced(bySeconds seconds: Int64) -> Timestamp {
        advanced(byNanoseconds: Timestamp.saturatingMultiply(seconds, Timestamp.nanosecondsPerSecond))
    }

    /// Nanoseconds from `other` to `self` (saturating; negative when `other` is later).
    public func nanoseconds(since other: Timestamp) -> Int64 {
        let (d, overflow) = nanosecondsSinceEpoch.subtractingReportingOverflow(other.nanosecondsSinceEpoch)
        if overflow { return nanosecondsSinceEpoch < other.nanosecondsSinceEpoch ? .min : .max }
        return d
    }

    /// Whole seconds until `later`, rounded up, never negative: the value for `Retry-After`.
    public func secondsRoundedUp(until later: Timestamp) -> UInt64 {
        let d = later.nanoseconds(since: self)
        guard d > 0 else { return 0 }
        return UInt64(d / Timestamp.nanosecondsPerSecond) + (d % Timestamp.nanosecondsPerSecond == 0 ? 0 : 1)
    }

    /// Orders timestamps chronologically.
    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch
    }

    /// The timestamp moved forward by a `Duration` (saturating).
    public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
        lhs.advanced(byNanoseconds: rhs.saturatingNanoseconds)
    }

    /// The timestamp moved back by a `Duration` (saturating).
    public static func - (lhs: Timestamp, rhs: Duration) -> Timestamp {
        let n = rhs.saturatingNanoseconds
        return lhs.advanced(byNanoseconds: n == .min ? .max : -n)
    }

    /// The time between two timestamps.
    public static func - (lhs: Timestamp, rhs: Timestamp) -> Duration {
        .nanoseconds(lhs.nanoseconds(since: rhs))
    }

    /// ISO 8601 / RFC 3339 form in UTC, e.g. `2026-11-23T20:29:00Z` (fraction only when non-zero).
    public var description: String { UTCDateTime(self).rfc3339 }

    /// Encodes as a bare integer of nanoseconds so stored state stays compact and exact.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self.nanosecondsSinceEpoch = try container.decode(Int64.self)
    }

    /// Encodes as a bare integer of nanoseconds.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(nanosecondsSinceEpoch)
    }

    static func saturatingMultiply(_ a: Int64, _ b: Int64) -> Int64 {
        let (r, overflow) = a.multipliedReportingOverflow(by: b)
        if overflow { return (a < 0) != (b < 0) ? .min : .max }
        return r
    }

    static func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
        let (r, overflow) = a.addingReportingOverflow(b)
        if overflow { return b < 0 ? .min : .max }
        return r
    }

    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    static func floorModulo(_ a: Int64, _ b: Int64) -> Int64 {
        a - floorDivide(a, b) * b
    }
}

extension Duration {
    /// The duration in whole nanoseconds, truncated towards zero and saturated to Int64.
    public var saturatingNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let whole = Timestamp.saturatingMultiply(seconds, Timestamp.nanosecondsPerSecond)
        return Timestamp.saturatingAdd(whole, attoseconds / 1_000_000_000)
    }
}

/// The source of the current time; adapters pass the system clock, tests pass a manual one.
///
/// Threading: implementations must be safe to call from any thread.
public protocol TollgateClock: Sendable {
    /// The current time.
    func now() -> Timestamp
}
