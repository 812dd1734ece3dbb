import TollgateCore

/// A period's bounds, `[start, end)`: what deciding reads of a slot's period.
struct PeriodBounds {
    var start: Timestamp
    var end: Timestamp

    /// Whether `t` falls within the period.
    @inline(__always)
    func contains(_ t: Timestamp) -> Bool { t >= start && t < end }

    /// The period's length in whole seconds (the `w` of a `RateLimit-Policy`).
    var seconds: UInt64 { start.secondsRoundedUp(until: end) }
}

/// The periods the gate's slots are in, each kept once: a slot holds a 4-byte index instead of
/// the period's bounds and id (32 bytes), since most keys share a few periods (this month, today).
///
/// Periods roll over and billing cycles differ per key, so the table grows; when it reaches
/// `compactAt` the gate drops the periods no slot is in (`compact(keeping:)`) and rewrites every
/// slot's index. Indices are stable between compactions.
///
/// Threading: owned by `GateState`, only touched under the key cache's lock.
final class PeriodTable {
    /// Bounds and ids by index, apart so that deciding reads two words and no string.
    private(set) var bounds: [PeriodBounds] = []
    private(set) var ids: [String] = []
    private var periods: [Period] = []
    private var indices: [Period: UInt32] = [:]
    /// Compact before adding a period once the table holds this many.
    private(set) var compactAt = 64

    /// Periods held.
    var count: Int { periods.count }

    /// The index of `period`, if held.
    func index(of period: Period) -> UInt32? { indices[period] }

    /// Adds `period` (not held yet) and returns its index.
    func append(_ period: Period) -> UInt32 {
        let index = UInt32(periods.count)
        periods.append(period)
        bounds.append(PeriodBounds(start: period.start, end: period.end))
        ids.append(period.id)
        indices[period] = index
        return index
    }

    /// Keeps the periods at the indices `used` marks, in order, and returns each old index's new
    /// one (`UInt32.max` for a period dropped).
    func compact(keeping used: [Bool]) -> [UInt32] {
        let old = periods
        periods = []
        bounds = []
        ids = []
        indices = [:]
        var remap = [UInt32](repeating: .max, count: old.count)
        for (index, period) in old.enumerated() where index < used.count && used[index] {
            remap[index] = append(period)
        }
        compactAt = max(64, 2 * periods.count)
        return remap
    }
}
