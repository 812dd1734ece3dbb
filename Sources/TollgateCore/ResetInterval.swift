/// How often a metered feature's quota starts afresh. All boundaries are UTC.
///
/// Periods are derived from the time alone (`period(containing:)`), so counters roll over lazily:
/// a new period id simply starts a new counter, and no job resets anything.
public enum ResetInterval: Sendable, Hashable, Codable {
    /// Every minute, on the minute.
    case minute
    /// Every hour, on the hour.
    case hour
    /// Every UTC day, at midnight.
    case day
    /// Every ISO 8601 week, Monday 00:00.
    case week
    /// Every UTC calendar month, on the 1st at 00:00.
    case month
    /// Monthly cycles that start on the anchor's day of month and time of day (whole seconds).
    ///
    /// A day the month does not have clamps to its last day (an anchor on the 31st starts on Feb 28,
    /// or Feb 29 in a leap year, then Mar 31); the anchor's sub-second part is ignored so ids stay
    /// second-precise.
    case billingCycle(anchor: Timestamp)

    /// The id prefix letter, unique per kind so ids of different intervals never collide.
    var prefix: Character {
        switch self {
        case .minute: "n"
        case .hour: "h"
        case .day: "d"
        case .week: "w"
        case .month: "m"
        case .billingCycle: "b"
        }
    }

    /// The period that contains `t`: `start <= t < end`.
    public func period(containing t: Timestamp) -> Period {
        let dt = UTCDateTime(t)
        let d = dt.date
        switch self {
        case .minute:
            let start = UTCDateTime(year: d.year, month: d.month, day: d.day, hour: dt.hour, minute: dt.minute).timestamp
            let id = "n" + Self.ymd(d) + Digits.pad(dt.hour, 2) + Digits.pad(dt.minute, 2)
            return Period(interval: self, id: id, start: start, end: start.advanced(bySeconds: 60))
        case .hour:
            let start = UTCDateTime(year: d.year, month: d.month, day: d.day, hour: dt.hour).timestamp
            return Period(interval: self, id: "h" + Self.ymd(d) + Digits.pad(dt.hour, 2), start: start, end: start.advanced(bySeconds: 3600))
        case .day:
            let start = UTCDateTime(year: d.year, month: d.month, day: d.day).timestamp
            return Period(interval: self, id: "d" + Self.ymd(d), start: start, end: start.advanced(bySeconds: 86_400))
        case .week:
            let mondayDays = d.daysSinceEpoch - (d.isoWeekday - 1)
            let start = Timestamp(seconds: mondayDays * 86_400)
            let (year, week) = d.isoWeek
            return Period(interval: self, id: "w\(Digits.pad(year, 4))W\(Digits.pad(week, 2))", start: start,
                          end: start.advanced(bySeconds: 7 * 86_400))
        case .month:
            let start = UTCDateTime(year: d.year, month: d.month, day: 1).timestamp
            let next = d.firstOfNextMonth
            let end = UTCDateTime(year: next.year, month: next.month, day: 1).timestamp
            return Period(interval: self, id: "m" + Digits.pad(d.year, 4) + Digits.pad(d.month, 2), start: start, end: end)
        case .billingCycle(let anchor):
            return billingCyclePeriod(containing: t, anchor: UTCDateTime(anchor))
        }
    }

    /// The cycle start in the month of (`year`, `month`): the anchor's day clamped to the month's length.
    static func cycleStart(year: Int64, month: Int64, anchor: UTCDateTime) -> Timestamp {
        let day = Swift.min(anchor.date.day, CivilDate.daysInMonth(year: year, month: month))
        return UTCDateTime(year: year, month: month, day: day, hour: anchor.hour, minute: anchor.minute, second: anchor.second).timestamp
    }

    private func billingCyclePeriod(containing t: Timestamp, anchor: UTCDateTime) -> Period {
        let d = UTCDateTime(t).date
        let thisMonth = Self.cycleStart(year: d.year, month: d.month, anchor: anchor)
        let next = d.firstOfNextMonth
        let start: Timestamp
        let end: Timestamp
        if t >= thisMonth {
            start = thisMonth
            end = Self.cycleStart(year: next.year, month: next.month, anchor: anchor)
        } else {
            let (year, month) = d.month == 1 ? (d.year - 1, Int64(12)) : (d.year, d.month - 1)
            start = Self.cycleStart(year: year, month: month, anchor: anchor)
            end = thisMonth
        }
        let s = UTCDateTime(start)
        let id = "b" + Self.ymd(s.date) + Digits.pad(s.hour, 2) + Digits.pad(s.minute, 2) + Digits.pad(s.second, 2)
        return Period(interval: self, id: id, start: start, end: end)
    }

    private static func ymd(_ d: CivilDate) -> String {
        Digits.pad(d.year, 4) + Digits.pad(d.month, 2) + Digits.pad(d.day, 2)
    }
}
