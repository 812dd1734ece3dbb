import Testing
import TollgateCore

@Suite struct CalendarTests {
    @Test func timestampHelpersAndSaturation() {
        #expect(Timestamp(seconds: 2).nanosecondsSinceEpoch == 2_000_000_000)
        #expect(Timestamp(milliseconds: 1500).nanosecondsSinceEpoch == 1_500_000_000)
        #expect(Timestamp(nanoseconds: -1).seconds == -1)
        #expect(Timestamp(nanoseconds: -1).milliseconds == -1)
        #expect(Timestamp(seconds: .max) == .max)
        #expect(Timestamp.max.advanced(byNanoseconds: 1) == .max)
        #expect(Timestamp(seconds: 10) + .milliseconds(250) == Timestamp(milliseconds: 10_250))
        #expect(Timestamp(seconds: 10) - Timestamp(seconds: 4) == .seconds(6))
        #expect(Timestamp(seconds: 0).secondsRoundedUp(until: Timestamp(milliseconds: 1001)) == 2)
        #expect(Timestamp(seconds: 5).secondsRoundedUp(until: Timestamp(seconds: 1)) == 0)
        #expect(ManualClock(current: Timestamp(seconds: 7)).now() == Timestamp(seconds: 7))
    }

    @Test func civilConversionsMatchKnownEpochSeconds() {
        // Reference values computed independently (Python calendar.timegm).
        #expect(utc(2026, 11, 23, 20, 29, 5) == Timestamp(seconds: 1_795_465_745))
        #expect(utc(2024, 2, 29) == Timestamp(seconds: 1_709_164_800))
        #expect(utc(2000, 2, 29) == Timestamp(seconds: 951_782_400))
        #expect(utc(2100, 3, 1) == Timestamp(seconds: 4_107_542_400))
        #expect(utc(1969, 12, 31, 23, 59, 59) == Timestamp(seconds: -1))
        let back = UTCDateTime(Timestamp(seconds: -1))
        #expect(back.date == CivilDate(year: 1969, month: 12, day: 31))
        #expect((back.hour, back.minute, back.second) == (23, 59, 59))
    }

    @Test func everyDayRoundTripsOverFiveCenturies() {
        var expected = CivilDate(year: 1800, month: 1, day: 1)
        var days = expected.daysSinceEpoch
        while expected.year < 2300 {
            #expect(CivilDate(daysSinceEpoch: days) == expected)
            #expect(expected.daysSinceEpoch == days)
            days += 1
            expected = expected.day < CivilDate.daysInMonth(year: expected.year, month: expected.month)
                ? CivilDate(year: expected.year, month: expected.month, day: expected.day + 1)
                : expected.firstOfNextMonth
        }
    }

    @Test func leapYears() {
        #expect(CivilDate.isLeapYear(2024))
        #expect(CivilDate.isLeapYear(2000))
        #expect(!CivilDate.isLeapYear(2100))
        #expect(!CivilDate.isLeapYear(2026))
        #expect(CivilDate.daysInMonth(year: 2024, month: 2) == 29)
        #expect(CivilDate.daysInMonth(year: 2100, month: 2) == 28)
        #expect(CivilDate(year: 2100, month: 2, day: 29).isValid == false)
        #expect(CivilDate(year: 2000, month: 2, day: 29).isValid)
        // The day after 2100-02-28 is March 1.
        #expect(CivilDate(daysSinceEpoch: CivilDate(year: 2100, month: 2, day: 28).daysSinceEpoch + 1) == CivilDate(year: 2100, month: 3, day: 1))
    }

    @Test func isoWeeksAtYearBoundaries() {
        #expect(CivilDate(year: 2026, month: 11, day: 23).isoWeek == (2026, 48))
        #expect(CivilDate(year: 2026, month: 11, day: 23).isoWeekday == 1)
        #expect(CivilDate(year: 2024, month: 12, day: 30).isoWeek == (2025, 1))
        #expect(CivilDate(year: 2021, month: 1, day: 3).isoWeek == (2020, 53))
        #expect(CivilDate(year: 2027, month: 1, day: 1).isoWeek == (2026, 53))
        #expect(CivilDate(year: 2026, month: 1, day: 1).isoWeek == (2026, 1))
        #expect(CivilDate.mondayOfISOWeek(year: 2025, week: 53) == nil)
        #expect(CivilDate.mondayOfISOWeek(year: 2026, week: 53) == CivilDate(year: 2026, month: 12, day: 28).daysSinceEpoch)
    }

    @Test func rfc3339ParsingAndFormatting() throws {
        #expect(try UTCDateTime.parseRFC3339("2026-11-23T20:29:05Z") == utc(2026, 11, 23, 20, 29, 5))
        #expect(try UTCDateTime.parseRFC3339("2026-11-23T21:29:05.5+01:00") == utc(2026, 11, 23, 20, 29, 5, ns: 500_000_000))
        #expect(try UTCDateTime.parseRFC3339("2026-11-23 15:29:05-05:00") == utc(2026, 11, 23, 20, 29, 5))
        #expect(utc(2026, 11, 23, 20, 29, 5).description == "2026-11-23T20:29:05Z")
        #expect(utc(2026, 1, 2, ns: 5).description == "2026-01-02T00:00:00.000000005Z")
        for bad in ["2026-02-30T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T20:29:05", "2026-11-23T20:29:05.Z",
                    "2026-11-23T20:29:05Zjunk", "+026-11-23T20:29:05Z", "2026-11-23T20:29:05+1:00", ""] {
            #expect(throws: TollgateCoreError.self) { try UTCDateTime.parseRFC3339(bad) }
        }
    }

    @Test func moneyDecimalParsing() throws {
        #expect(try Money(decimal: "0.0015", decimals: 6, asset: "USDC") == Money(atomicUnits: 1500, asset: "USDC"))
        #expect(try Money(decimal: "12", decimals: 6).atomicUnits == 12_000_000)
        #expect(Money(atomicUnits: 1500).decimalString(decimals: 6) == "0.001500")
        for bad in ["0.0000001", "-1", "1e3", "", ".5", "1.", "18446744073709.551616"] {
            #expect(throws: TollgateCoreError.self) { try Money(decimal: bad, decimals: 6) }
        }
        #expect(Money(atomicUnits: .max).adding(Money(atomicUnits: 1)) == nil)
        #expect(Money(atomicUnits: 1, asset: "USDC").adding(Money(atomicUnits: 1, asset: "EURC")) == nil)
        #expect(Money(atomicUnits: 1, asset: "USDC").adding(Money(atomicUnits: 2, asset: "USDC")) == Money(atomicUnits: 3, asset: "USDC"))
    }
}
