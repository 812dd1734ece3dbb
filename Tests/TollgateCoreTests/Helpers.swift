import TollgateCore
import TollgateTestSupport

/// A UTC timestamp from calendar fields.
func utc(_ y: Int64, _ mo: Int64, _ d: Int64, _ h: Int64 = 0, _ mi: Int64 = 0, _ s: Int64 = 0, ns: Int64 = 0) -> Timestamp {
    UTCDateTime(year: y, month: mo, day: d, hour: h, minute: mi, second: s, nanosecond: ns).timestamp
}

/// A clock tests move by hand.
struct ManualClock: TollgateClock {
    var current: Timestamp
    func now() -> Timestamp { current }
}
