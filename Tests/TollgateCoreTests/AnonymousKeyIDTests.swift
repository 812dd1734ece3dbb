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

    @Test("IPv6 colons become dashes and a zone is dropped: nothing a Redis key or usage record forbids")
    func ipv6() throws {
        let id = AnonymousKeyID.make(plan: "anon_plan-1", clientAddress: "fe80::1%eth0")
        #expect(id == "anon.anon_plan-1.fe80--1")
        #expect(!id.contains(":") && !id.contains("{") && !id.contains(" "))
        #expect(AnonymousKeyID.parse(id)?.plan == "anon_plan-1")
        #expect(AnonymousKeyID.make(plan: "free", clientAddress: "::1") == "anon.free.--1")
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
