import Testing
import TollgateCore

@Suite("Anonymous callers' key ids")
struct AnonymousKeyIDTests {
    @Test("an IPv4 caller's id names the plan and the address, and parses back")
    func ipv4() throws {
        let id = AnonymousKeyID.make(plan: "free", clientAddress: "203.0.113.9")
        #expect(id == "anon.free.203.0.113.9")
        let parsed = try #require(AnonymousKeyID.parse(id))
        #expect(parsed.plan == "free" && parsed.client == "203.0.113.9")
    }

    @Test("an IPv6 caller is its /64, colons as dashes, zone dropped: nothing a Redis key or usage record forbids")
    func ipv6() throws {
        let id = AnonymousKeyID.make(plan: "anon_plan-1", clientAddress: "fe80::1%eth0")
        #expect(id == "anon.anon_plan-1.fe80--")
        #expect(!id.contains(":") && !id.contains("{") && !id.contains(" "))
        #expect(AnonymousKeyID.parse(id)?.plan == "anon_plan-1")
        #expect(AnonymousKeyID.make(plan: "free", clientAddress: "::1") == "anon.free.--")
        // Every address of one /64 is one caller; the next /64 is another.
        let a = AnonymousKeyID.make(plan: "free", clientAddress: "2001:db8:1:2:aaaa:bbbb:cccc:dddd")
        let b = AnonymousKeyID.make(plan: "free", clientAddress: "2001:db8:1:2::7")
        let c = AnonymousKeyID.make(plan: "free", clientAddress: "2001:db8:1:3::7")
        #expect(a == "anon.free.2001-db8-1-2--" && a == b && a != c)
        // An IPv4-mapped address is its IPv4 caller, not one /64 shared by every IPv4 client.
        #expect(AnonymousKeyID.make(plan: "free", clientAddress: "::ffff:203.0.113.9") == "anon.free.203.0.113.9")
        #expect(AnonymousKeyID.make(plan: "free", clientAddress: "not:an:address") == "anon.free.unknown")
    }

    @Test("an address that is not one (or none) becomes `unknown`")
    func junkAddress() {
        #expect(AnonymousKeyID.make(plan: "free", clientAddress: "a{b}") == "anon.free.unknown")
        #expect(AnonymousKeyID.make(plan: "free", clientAddress: "") == "anon.free.unknown")
        #expect(AnonymousKeyID.make(plan: "free", clientAddress: String(repeating: "1", count: 65)) == "anon.free.unknown")
    }

    @Test("API key ids and malformed anonymous ids do not parse")
    func notAnonymous() {
        #expect(AnonymousKeyID.parse(String(repeating: "ab", count: 32)) == nil)
        #expect(AnonymousKeyID.parse("anon.free") == nil)
        #expect(AnonymousKeyID.parse("anon..1.2.3.4") == nil)
        #expect(AnonymousKeyID.parse("anon.free.") == nil)
        #expect(AnonymousKeyID.parse("anon.fr ee.1.2.3.4") == nil)
        #expect(AnonymousKeyID.parse("anon.free.1:2") == nil)
        #expect(AnonymousKeyID.parse("anon:127.0.0.1") == nil)
    }
}
