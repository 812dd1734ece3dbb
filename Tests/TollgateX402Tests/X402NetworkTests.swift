import Testing
import TollgateX402

@Suite struct X402NetworkTests {
    @Test func parsesBothForms() {
        #expect(X402Network("base-sepolia")?.caip2 == "eip155:84532")
        #expect(X402Network("eip155:8453")?.v1Name == "base")
        #expect(X402Network("eip155:999999")?.v1Name == nil)
        #expect(X402Network("eip155:") == nil)
        #expect(X402Network("solana:abc") == nil)
    }
}
