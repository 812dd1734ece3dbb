import TollgateTestSupport
import Testing
import TollgateCore

@Suite struct PeriodTests {
    let t = utc(2026, 11, 23, 20, 29, 5)

    @Test func idsAndBoundsForEachInterval() {
        let n = ResetInterval.minute.period(containing: t)
        #expect(n.id == "n202611232029")
        #expect((n.start, n.end) == (utc(2026, 11, 23, 20, 29), utc(2026, 11, 23, 20, 30)))
        let h = ResetInterval.hour.period(containing: t)
        #expect(h.id == "h2026112320")
        #expect((h.start, h.end) == (utc(2026, 11, 23, 20), utc(2026, 11, 23, 21)))
        let d = ResetInterval.day.period(containing: t)
        #expect(d.id == "d20261123")
        #expect((d.start, d.end) == (utc(2026, 11, 23), utc(2026, 11, 24)))
        let w = ResetInterval.week.period(containing: t)
        #expect(w.id == "w2026W48")
        #expect((w.start, w.end) == (utc(2026, 11, 23), utc(2026, 11, 30)))
        let m = ResetInterval.month.period(containing: t)
        #expect(m.id == "m202611")
        #expect((m.start, m.end) == (utc(2026, 11, 1), utc(2026, 12, 1)))
        #expect(m.lengthInSeconds == 30 * 86_400)
        #expect(d.contains(utc(2026, 11, 23)) && !d.contains(utc(2026, 11, 24)))
    }

    @Test func monthRolloverAndYearEnd() {
        #expect(ResetInterval.month.period(containing: utc(2026, 1, 31, 23, 59, 59, ns: 999_999_999)).id == "m202601")
        #expect(ResetInterval.month.period(containing: utc(2026, 2, 1)).id == "m202602")
        let dec = ResetInterval.month.period(containing: utc(2026, 12, 31, 23, 59, 59))
        #expect(dec.id == "m202612")
        #expect(dec.end == utc(2027, 1, 1))
        #expect(dec.next.id == "m202701")
        #expect(dec.next.previous == dec)
        let lastDay = ResetInterval.day.period(containing: utc(2026, 12, 31, 12))
        #expect(lastDay.next.id == "d20270101")
        #expect(ResetInterval.hour.period(containing: utc(2026, 12, 31, 23, 30)).next.id == "h2027010100")
        #expect(ResetInterval.minute.period(containing: utc(2026, 12, 31, 23, 59, 30)).next.id == "n202701010000")
    }

    @Test func leapDays() {
        #expect(ResetInterval.day.period(containing: utc(2024, 2, 28, 12)).next.id == "d20240229")
        #expect(ResetInterval.day.period(containing: utc(2000, 2, 28, 12)).next.id == "d20000229")
        #expect(ResetInterval.day.period(containing: utc(2100, 2, 28, 12)).next.id == "d21000301")
        #expect(ResetInterval.month.period(containing: utc(2024, 2, 10)).lengthInSeconds == 29 * 86_400)
        #expect(ResetInterval.month.period(containing: utc(2100, 2, 10)).lengthInSeconds == 28 * 86_400)
        #expect(ResetInterval.month.period(containing: utc(2000, 2, 10)).lengthInSeconds == 29 * 86_400)
    }

    @Test func isoWeekPeriodsAcrossYearBoundaries() {
        // 2024-12-30 (Monday) starts week 1 of 2025.
        let w = ResetInterval.week.period(containing: utc(2025, 1, 1))
        #expect(w.id == "w2025W01")
        #expect(w.start == utc(2024, 12, 30))
        #expect(w.previous.id == "w2024W52")
        // 2021-01-03 (Sunday) is in week 53 of 2020.
        let w53 = ResetInterval.week.period(containing: utc(2021, 1, 3, 23))
        #expect(w53.id == "w2020W53")
        #expect((w53.start, w53.end) == (utc(2020, 12, 28), utc(2021, 1, 4)))
        #expect(w53.next.id == "w2021W01")
        #expect(ResetInterval.week.period(containing: utc(2027, 1, 1)).id == "w2026W53")
    }

    @Test func billingCycleAnchoredOnThe31st() {
        let cycle = ResetInterval.billingCycle(anchor: utc(2026, 1, 31, 10, 15))
        let jan = cycle.period(containing: utc(2026, 2, 15))
        #expect(jan.id == "b20260131101500")
        #expect((jan.start, jan.end) == (utc(2026, 1, 31, 10, 15), utc(2026, 2, 28, 10, 15)))
        let feb = jan.next
        #expect(feb.id == "b20260228101500")
        #expect(feb.end == utc(2026, 3, 31, 10, 15))
        #expect(feb.next.end == utc(2026, 4, 30, 10, 15))
        // Before the time of day on the anchor day, the previous cycle still runs.
        #expect(cycle.period(containing: utc(2026, 3, 31, 10, 14, 59)).id == "b20260228101500")
        // Leap year: February's cycle starts on the 29th.
        #expect(cycle.period(containing: utc(2028, 3, 1)).id == "b20280229101500")
        // Year end.
        #expect(cycle.period(containing: utc(2027, 1, 5)).id == "b20261231101500")
        #expect(cycle.period(containing: utc(2027, 1, 5)).end == utc(2027, 1, 31, 10, 15))
    }

    @Test func billingCycleAnchoredOnFeb29() {
        let cycle = ResetInterval.billingCycle(anchor: utc(2024, 2, 29))
        #expect(cycle.period(containing: utc(2024, 3, 1)).id == "b20240229000000")
        #expect(cycle.period(containing: utc(2024, 3, 29)).id == "b20240329000000")
        // Non-leap February clamps to the 28th; March goes back to the 29th.
        let feb2025 = cycle.period(containing: utc(2025, 2, 28, 1))
        #expect((feb2025.start, feb2025.end) == (utc(2025, 2, 28), utc(2025, 3, 29)))
        #expect(cycle.period(containing: utc(2025, 2, 27)).id == "b20250129000000")
        #expect(cycle.period(containing: utc(2100, 2, 28, 1)).id == "b21000228000000")
    }

    @Test func idsParseBackToTheSamePeriod() throws {
        let intervals: [ResetInterval] = [.minute, .hour, .day, .week, .month, .billingCycle(anchor: utc(2024, 1, 31, 8, 30))]
        var rng = SplitMix64(seed: 42)
        for _ in 0..<300 {
            let at = Timestamp(seconds: Int64.random(in: 0...4_102_444_800, using: &rng))   // 1970...2100
            for interval in intervals {
                let p = interval.period(containing: at)
                #expect(p.contains(at))
                #expect(try interval.period(id: p.id) == p)
                #expect(p.next.start == p.end)
                #expect(p.previous.end == p.start)
            }
        }
    }

    @Test func badIdsAreRefused() {
        let cases: [(ResetInterval, String)] = [
            (.day, "d20260230"), (.day, "d2026112"), (.day, "m202611"), (.day, "d2026-1-23"), (.day, ""),
            (.week, "w2025W53"), (.week, "w2026W00"), (.week, "w2026X48"), (.week, "w2026W4"),
            (.month, "m202613"), (.hour, "h2026112324"), (.minute, "n202611232060"),
            (.billingCycle(anchor: utc(2026, 1, 31)), "b20260215000000"),   // not a cycle start for this anchor
            (.billingCycle(anchor: utc(2026, 1, 31)), "b20260228000001"),
        ]
        for (interval, id) in cases {
            #expect(throws: TollgateCoreError.self, "\(id)") { try interval.period(id: id) }
        }
    }
}
