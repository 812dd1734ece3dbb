import TollgateCore

/// A UTC timestamp from calendar fields.
func utc(_ y: Int64, _ mo: Int64, _ d: Int64, _ h: Int64 = 0, _ mi: Int64 = 0, _ s: Int64 = 0, ns: Int64 = 0) -> Timestamp {
    UTCDateTime(year: y, month: mo, day: d, hour: h, minute: mi, second: s, nanosecond: ns).timestamp
}

/// A tiny deterministic PRNG (SplitMix64), so property-style loops are reproducible without Foundation.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A clock tests move by hand.
struct ManualClock: TollgateClock {
    var current: Timestamp
    func now() -> Timestamp { current }
}
