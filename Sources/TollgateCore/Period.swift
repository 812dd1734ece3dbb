/// One quota period of a reset interval: `[start, end)` with a compact id for Redis keys and queries.
///
/// Ids: `n202611232029` (minute), `h2026112320` (hour), `d20261123` (day), `w2026W48` (ISO week),
/// `m202611` (month), `b20261130101500` (billing cycle starting 2026-11-30T10:15:00Z).
public struct Period: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The interval this period belongs to.
    public var interval: ResetInterval
    /// The compact, stable id, e.g. `d20261123`.
    public var id: String
    /// The first instant of the period.
    public var start: Timestamp
    /// The first instant after the period (exclusive).
    public var end: Timestamp

    /// Creates a period; normally obtained from `ResetInterval.period(containing:)`.
    public init(interval: ResetInterval, id: String, start: Timestamp, end: Timestamp) {
        self.interval = interval
        self.id = id
        self.start = start
        self.end = end
    }

    /// Whether `t` falls within the period.
    public func contains(_ t: Timestamp) -> Bool { t >= start && t < end }

    /// The period's length in whole seconds (the `w` of a `RateLimit-Policy`).
    public var lengthInSeconds: UInt64 { start.secondsRoundedUp(until: end) }

    /// The period that follows this one.
    public var next: Period { interval.period(containing: end) }

    /// The period that precedes this one.
    public var previous: Period { interval.period(containing: start.advanced(byNanoseconds: -1)) }

    /// The id.
    public var description: String { id }
}

extension ResetInterval {
    /// The period named by `id` (as in `?period=d20261123`), refusing ids that name no period of this interval.
    ///
    /// Parsing is checked by round trip: the id's start is rebuilt, and the period containing it must
    /// carry the same id. That refuses `d20260230`, week 53 of a 52-week year, or a billing-cycle id
    /// that does not start on this key's anchor.
    public func period(id: String) throws -> Period {
        let bad = TollgateCoreError(.invalidPeriodID, "\"\(id)\" is not a period id of interval \(self)")
        guard let first = id.first, first == prefix else { throw bad }
        let body = id.dropFirst()
        var start: UTCDateTime
        switch self {
        case .week:
            let parts = body.split(separator: "W", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0].count == 4, parts[1].count == 2,
                  let year = Digits.parse(parts[0]), let week = Digits.parse(parts[1]),
                  let monday = CivilDate.mondayOfISOWeek(year: year, week: week) else { throw bad }
            let date = CivilDate(daysSinceEpoch: monday)
            start = UTCDateTime(year: date.year, month: date.month, day: date.day)
        default:
            let widths: [Int]
            switch self {
            case .minute: widths = [4, 2, 2, 2, 2]
            case .hour: widths = [4, 2, 2, 2]
            case .day: widths = [4, 2, 2]
            case .month: widths = [4, 2]
            default: widths = [4, 2, 2, 2, 2, 2]
            }
            guard body.count == widths.reduce(0, +) else { throw bad }
            var fields: [Int64] = []
            var index = body.startIndex
            for width in widths {
                let end = body.index(index, offsetBy: width)
                guard let value = Digits.parse(body[index..<end]) else { throw bad }
                fields.append(value)
                index = end
            }
            fields += Array(repeating: 0, count: 6 - fields.count)
            start = UTCDateTime(year: fields[0], month: fields[1], day: widths.count == 2 ? 1 : fields[2],
                                hour: fields[3], minute: fields[4], second: fields[5])
        }
        guard start.isValid else { throw bad }
        let period = period(containing: start.timestamp)
        guard period.id == id else { throw bad }
        return period
    }
}
