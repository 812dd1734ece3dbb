import TollgateCore

/// When the period a core period id names ends, for the expiry of its counters.
enum PeriodEnd {
    /// The end of the period `id` names, or nil when `id` is not a period id of the core.
    ///
    /// Billing-cycle ids (`b20260131000000`) carry their own start, which is the key's anchor for
    /// that cycle, so they resolve without knowing the key.
    static func of(_ id: String) -> Timestamp? {
        guard let prefix = id.first else { return nil }
        let interval: ResetInterval
        switch prefix {
        case "n": interval = .minute
        case "h": interval = .hour
        case "d": interval = .day
        case "w": interval = .week
        case "m": interval = .month
        case "b":
            guard let start = billingCycleStart(id) else { return nil }
            interval = .billingCycle(anchor: start)
        default: return nil
        }
        return try? interval.period(id: id).end
    }

    private static func billingCycleStart(_ id: String) -> Timestamp? {
        let digits = Array(id.utf8.dropFirst())
        guard digits.count == 14, digits.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        func field(_ from: Int, _ width: Int) -> Int64 {
            digits[from..<(from + width)].reduce(0) { $0 * 10 + Int64($1 - 0x30) }
        }
        let dateTime = UTCDateTime(year: field(0, 4), month: field(4, 2), day: field(6, 2),
                                   hour: field(8, 2), minute: field(10, 2), second: field(12, 2))
        return dateTime.isValid ? dateTime.timestamp : nil
    }
}
