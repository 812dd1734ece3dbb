import Testing
import TollgateZeroMQ

@Suite("ZMQ_MAXMSGSIZE")
struct MaxMessageSizeTests {
    struct Observed: Sendable {
        var received: [[[UInt8]]] = []
    }

    // TCP only: the limit is enforced while decoding the wire format, which inproc skips.
    @Test("a message over the receiver's size limit is not delivered and the receiver keeps working")
    func oversizedMessageIsDropped() async throws {
        let limit = 1024
        let observed = try await onSocketThread { context in
            let router = try context.makeTestSocket(.router)
            defer { router.close() }
            try router.setOption(.maxMessageSize, to: Int64(limit))
            let endpoint = try router.bindToFreeEndpoint(.tcp)

            let dealer = try context.makeTestSocket(.dealer)
            defer { dealer.close() }
            // The ROUTER drops the connection of a peer that breaks the limit; come back quickly.
            try dealer.setOption(.reconnectInterval, to: 10)
            try dealer.connect(endpoint)
            try dealer.send([[UInt8](repeating: 0xAB, count: 4 * limit)])

            // The big message went first on the connection, so if it were delivered it would be
            // the first thing the ROUTER sees. Keep sending small ones until one arrives.
            var observed = Observed()
            let stop = deadline(seconds: 10)
            var attempt = 0
            while observed.received.isEmpty, ContinuousClock.now < stop {
                attempt += 1
                try dealer.send([bytes("small \(attempt)")])
                if let message = try router.receive(within: 100) {
                    observed.received.append(message)
                }
            }
            // Collect stragglers, to show no large message turns up late either.
            while let message = try router.receive(within: 100) {
                observed.received.append(message)
            }
            return observed
        }

        let first = try #require(observed.received.first)
        #expect(text(first[1]).hasPrefix("small "))
        #expect(observed.received.allSatisfy { $0.count == 2 && $0[1].count < limit })
    }

    @Test("the limit round-trips through the option")
    func optionRoundTrip() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let socket = try context.makeTestSocket(.router)
        defer { socket.close() }
        #expect(try socket.option(.maxMessageSize) == -1)
        try socket.setOption(.maxMessageSize, to: 65_536)
        #expect(try socket.option(.maxMessageSize) == 65_536)
    }
}
