/// A proleptic Gregorian calendar date (UTC), with the integer day arithmetic periods are built on.
///
/// The conversions count days in 400-year eras (146 097 days each), which makes them exact for every
/// date and free of tables and loops.
public struct CivilDate: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The year, e.g. 2026.
    public var year: Int64
    /// The month, 1...12.
    public var month: Int64
    /// The day of the month, 1...31.
    public var day: Int64

    /// Creates a date; `month` and `day` must be valid for `year` (see `isValid`).
    public init(year: Int64, month: Int64, day: Int64) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// Whether month and day exist in this year.
    public var isValid: Bool {
        (1...12).contains(month) && day >= 1 && day <= CivilDate.daysInMonth(year: year, month: month)
    }

    /// Whether `year` has a February 29 (divisible by 4, except centuries not divisible by 400).
    public static func isLeapYear(_ year: Int64) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// The number of days in `month` of `year`.
    public static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 (negative before).
    public var daysSinceEpoch: Int64 {
        // Shift the year to start in March so the leap day is the last day of the shifted year.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400                                   // 0...399
        let shiftedMonth = month > 2 ? month - 3 : month + 9            // March = 0
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1          // 0...365
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468                      // 719 468 = days 0000-03-01 → 1970-01-01
    }

    /// The date `days` days after 1970-01-01.
    public init(daysSinceEpoch days: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097                                // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        self.init(year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month: month, day: day)
    }

    /// ISO weekday: 1 = Monday ... 7 = Sunday.
    public var isoWeekday: Int64 {
        // 1970-01-01 was a Thursday (4).
        Timestamp.floorModulo(daysSinceEpoch + 3, 7) + 1
    }

    /// The ISO 8601 week-numbering year and week (1...53): the week belongs to the year of its Thursday.
    public var isoWeek: (year: Int64, week: Int64) {
        let days = daysSinceEpoch
        let thursday = days - (isoWeekday - 1) + 3
        let weekYear = CivilDate(daysSinceEpoch: thursday).year
        let jan1 = CivilDate(year: weekYear, month: 1, day: 1).daysSinceEpoch
        return (weekYear, (thursday - jan1) / 7 + 1)
    }

    /// Days since the epoch of the Monday starting ISO week `week` of `weekYear`, or nil if no such week.
    public static func mondayOfISOWeek(year weekYear: Int64, week: Int64) -> Int64? {
        guard week >= 1, week <= 53 else { return nil }
        // January 4 is always in week 1.
        let jan4 = CivilDate(year: weekYear, month: 1, day: 4)
        let monday = jan4.daysSinceEpoch - (jan4.isoWeekday - 1) + (week - 1) * 7
        let check = CivilDate(daysSinceEpoch: monday).isoWeek
        return check.year == weekYear && check.week == week ? monday : nil
    }

    /// The first day of the next month.
    public var firstOfNextMonth: CivilDate {
        month == 12 ? CivilDate(year: year + 1, month: 1, day: 1) : CivilDate(year: year, month: month + 1, day: 1)
    }

    /// Orders dates chronologically.
    public static func < (lhs: CivilDate, rhs: CivilDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    /// `YYYY-MM-DD`.
    public var description: String {
        "\(Digits.pad(year, 4))-\(Digits.pad(month, 2))-\(Digits.pad(day, 2))"
    }
}

/// Zero-padded decimal formatting and strict parsing, without Foundation.
enum Digits {
    /// `value` in decimal, left-padded with zeros to `width` (a minus sign is kept in front).
    static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value.magnitude)
        let padded = String(repeating: "0", count: Swift.max(0, width - digits.count)) + digits
        return value < 0 ? "-" + padded : padded
    }

    /// Parses exactly the ASCII digits in `text` (no sign, no spaces), or nil.
    static func parse<S: StringProtocol>(_ text: S) -> Int64? {
        guard !text.isEmpty, text.utf8.count <= 18 else { return nil }
        var value: Int64 = 0
        for byte in text.utf8 {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + Int64(byte - 0x30)
        }
        return value
    }
}
