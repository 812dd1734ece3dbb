import Testing
@testable import TollgateSidecar

@Suite("Uplink ack latency")
struct UplinkAckLatencyTests {
    @Test("no timeout before the first ack, so the configured retry delays rule alone")
    func emptyIsZero() {
        #expect(AckLatency().retransmitTimeout == .zero)
    }

    @Test("the first sample gives SRTT + 4 × RTTVAR = 3 × the sample (RFC 6298)")
    func firstSample() {
        var latency = AckLatency()
        latency.add(.milliseconds(100))
        #expect(latency.retransmitTimeout == .milliseconds(300))
    }

    @Test("steady acks pull the timeout towards the latency; a stall cannot push it past the cap")
    func convergesAndIsCapped() {
        var latency = AckLatency()
        for _ in 0..<200 { latency.add(.milliseconds(800)) }
        #expect(latency.retransmitTimeout >= .milliseconds(800))
        #expect(latency.retransmitTimeout < .milliseconds(820))
        latency.add(.seconds(3_600))
        #expect(latency.retransmitTimeout == AckLatency.maxTimeout)
    }
}
