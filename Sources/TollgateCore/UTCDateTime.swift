/// A timestamp broken down into UTC calendar fields, and back.
public struct UTCDateTime: Sendable, Hashable, Codable {
    /// The calendar date.
    public var date: CivilDate
    /// Hour of the day, 0...23.
    public var hour: Int64
    /// Minute, 0...59.
    public var minute: Int64
    /// Second, 0...59 (no leap seconds: Unix time has none).
    public var second: Int64
    /// Nanoseconds within the second, 0...999 999 999.
    public var nanosecond: Int64

    /// Creates a date-time from fields; use `timestamp` to convert (it saturates out of range).
    public init(year: Int64, month: Int64, day: Int64, hour: Int64 = 0, minute: Int64 = 0, second: Int64 = 0, nanosecond: Int64 = 0) {
        self.date = CivilDate(year: year, month: month, day: day)
        self.hour = hour
        self.minute = minute
        self.second = second
        self.nanosecond = nanosecond
    }

    /// Breaks a timestamp down into UTC fields.
    public init(_ timestamp: Timestamp) {
        let ns = timestamp.nanosecondsSinceEpoch
        let seconds = Timestamp.floorDivide(ns, Timestamp.nanosecondsPerSecond)
        let days = Timestamp.floorDivide(seconds, 86_400)
        let secondOfDay = seconds - days * 86_400
        self.date = CivilDate(daysSinceEpoch: days)
        self.hour = secondOfDay / 3600
        self.minute = secondOfDay % 3600 / 60
        self.second = secondOfDay % 60
        self.nanosecond = ns - seconds * Timestamp.nanosecondsPerSecond
    }

    /// Seconds since midnight.
    public var secondOfDay: Int64 { hour * 3600 + minute * 60 + second }

    /// The timestamp for these fields (saturating outside the Int64 nanosecond range).
    public var timestamp: Timestamp {
        let seconds = Timestamp.saturatingAdd(Timestamp.saturatingMultiply(date.daysSinceEpoch, 86_400), secondOfDay)
        return Timestamp(seconds: seconds).advanced(byNanoseconds: nanosecond)
    }

    /// Whether every field is in range.
    public var isValid: Bool {
        date.isValid && (0...23).contains(hour) && (0...59).contains(minute) && (0...59).contains(second)
            && (0...999_999_999).contains(nanosecond)
    }

    /// RFC 3339 in UTC: `2026-11-23T20:29:00Z`, with a 9-digit fraction only when non-zero.
    public var rfc3339: String {
        var text = "\(date)T\(Digits.pad(hour, 2)):\(Digits.pad(minute, 2)):\(Digits.pad(second, 2))"
        if nanosecond != 0 { text += "." + Digits.pad(nanosecond, 9) }
        return text + "Z"
    }

    /// Parses RFC 3339 (`2026-11-23T20:29:00Z`, `...00.5+01:00`, `t`/space separator) into a timestamp.
    ///
    /// Config files carry billing anchors this way; anything malformed is refused, never guessed.
    public static func parseRFC3339(_ text: String) throws -> Timestamp {
        let bad = TollgateCoreError(.invalidTimestamp, "not an RFC 3339 timestamp: \"\(text)\"")
        let b = Array(text.utf8)
        guard b.count >= 20, b[4] == 0x2D, b[7] == 0x2D, b[13] == 0x3A, b[16] == 0x3A,
              b[10] == 0x54 || b[10] == 0x74 || b[10] == 0x20 else { throw bad }
        func num(_ from: Int, _ to: Int) throws -> Int64 {
            guard let v = Digits.parse(String(decoding: b[from..<to], as: UTF8.self)) else { throw bad }
            return v
        }
        var fields = UTCDateTime(year: try num(0, 4), month: try num(5, 7), day: try num(8, 10),
                                 hour: try num(11, 13), minute: try num(14, 16), second: try num(17, 19))
        var i = 19
        if b[i] == 0x2E {                                                // fractional seconds
            i += 1
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            guard i > start, i - start <= 9 else { throw bad }
            fields.nanosecond = try num(start, i) * pow10(9 - (i - start))
        }
        guard fields.isValid, i < b.count else { throw bad }
        var offsetSeconds: Int64 = 0
        if b[i] == 0x5A || b[i] == 0x7A {                                 // Z
            guard i + 1 == b.count else { throw bad }
        } else {
            guard b[i] == 0x2B || b[i] == 0x2D, i + 6 == b.count, b[i + 3] == 0x3A else { throw bad }
            let hours = try num(i + 1, i + 3), minutes = try num(i + 4, i + 6)
            guard hours <= 23, minutes <= 59 else { throw bad }
            offsetSeconds = (hours * 3600 + minutes * 60) * (b[i] == 0x2B ? 1 : -1)
        }
        let t = fields.timestamp.advanced(bySeconds: -offsetSeconds)
        guard t != .min, t != .max else { throw TollgateCoreError(.invalidTimestamp, "timestamp out of range: \"\(text)\"") }
        return t
    }

    private static func pow10(_ n: Int) -> Int64 {
        var r: Int64 = 1
        for _ in 0..<n { r *= 10 }
        return r
    }
}
