import Testing
import TollgateSidecar

@Suite("Tollgate-Units parsing")
struct TollgateUnitsTests {
    @Test func parsesEntries() throws {
        let units = try #require(TollgateUnits(headerValues: ["tokens=532, compute_ms=12"]))
        #expect(units.value(for: "tokens") == 532)
        #expect(units.value(for: "compute_ms") == 12)
        let split = units.split(for: "tokens")
        #expect(split.units == 532)
        #expect(split.extra == ["compute_ms": 12])
        #expect(units.split(for: "api_call").units == 1)
    }

    @Test func severalHeaderLinesAreOneList() throws {
        let units = try #require(TollgateUnits(headerValues: ["tokens=1", " images = 2 "]))
        #expect(units.entries.count == 2)
    }

    @Test(arguments: [
        "", " ", "tokens", "tokens=", "=5", "tokens=5,", ",tokens=5", "tokens=-1", "tokens=1.5", "Tokens=5",
        "tokens=5 compute=1", "tokens=5,tokens=6", "tok ens=5", "tokens=1234567890123456789", "9lives=1", "t\u{00e9}=1",
        String(repeating: "a", count: 65) + "=1",
        (0..<17).map { "u\($0)=1" }.joined(separator: ","),
    ])
    func refusesMalformed(_ value: String) {
        #expect(TollgateUnits(headerValues: [value]) == nil)
    }

    @Test func acceptsLimits() {
        #expect(TollgateUnits(headerValues: [String(repeating: "a", count: 64) + "=999999999999999999"]) != nil)
        #expect(TollgateUnits(headerValues: [(0..<16).map { "u\($0)=1" }.joined(separator: ",")]) != nil)
    }
}
