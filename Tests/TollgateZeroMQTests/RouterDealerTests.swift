import Testing
import TollgateZeroMQ

@Suite("ROUTER/DEALER")
struct RouterDealerTests {
    struct Exchange: Sendable {
        var routerSaw: [[[UInt8]]] = []
        var aliceGot: [[UInt8]]?
        var bobGot: [[UInt8]]?
    }

    @Test("ROUTER sees each DEALER's routing id as the first frame and replies to it", arguments: Transport.allCases)
    func routingIDs(transport: Transport) async throws {
        let exchange = try await onSocketThread { context in
            let router = try context.makeTestSocket(.router)
            defer { router.close() }
            // Unknown peers become errors rather than silent drops.
            try router.setOption(.routerMandatory, to: true)
            let endpoint = try router.bindToFreeEndpoint(transport)

            let alice = try context.makeTestSocket(.dealer)
            defer { alice.close() }
            try alice.setOption(.routingID, to: bytes("alice"))
            try alice.connect(endpoint)
            let bob = try context.makeTestSocket(.dealer)
            defer { bob.close() }
            try bob.setOption(.routingID, to: bytes("bob"))
            try bob.connect(endpoint)

            try alice.send([bytes("from alice")])
            try bob.send([bytes("from bob")])
            var exchange = Exchange()
            for _ in 0 ..< 2 {
                guard let message = try router.receive(within: 5000) else { break }
                exchange.routerSaw.append(message)
            }
            // Reply in the opposite order to show routing follows the id, not arrival.
            try router.send([bytes("bob"), bytes("to bob")])
            try router.send([bytes("alice"), bytes("to alice")])
            exchange.bobGot = try bob.receive(within: 5000)
            exchange.aliceGot = try alice.receive(within: 5000)
            return exchange
        }

        let byID = Dictionary(uniqueKeysWithValues: exchange.routerSaw.map { (text($0[0]), $0.dropFirst().map(text)) })
        #expect(exchange.routerSaw.count == 2)
        #expect(byID == ["alice": ["from alice"], "bob": ["from bob"]])
        #expect(exchange.aliceGot == [bytes("to alice")])
        #expect(exchange.bobGot == [bytes("to bob")])
    }

    @Test("multipart messages keep empty frames and zero bytes", arguments: Transport.allCases)
    func emptyAndBinaryFrames(transport: Transport) async throws {
        let message: [[UInt8]] = [[], [0], [0, 0, 0], [], [1, 0, 2, 0, 255], Array(0 ... 255), []]
        let (atRouter, atDealer) = try await onSocketThread { context in
            let router = try context.makeTestSocket(.router)
            defer { router.close() }
            let endpoint = try router.bindToFreeEndpoint(transport)
            let dealer = try context.makeTestSocket(.dealer)
            defer { dealer.close() }
            try dealer.connect(endpoint)

            try dealer.send(message)
            let atRouter = try router.receive(within: 5000)
            if let atRouter {
                try router.send(atRouter)
            }
            return (atRouter, try dealer.receive(within: 5000))
        }

        #expect(atRouter?.count == message.count + 1)
        #expect(atRouter.map { Array($0.dropFirst()) } == message)
        #expect(atDealer == message)
    }

    struct PipelineOutcome: Sendable {
        var sent = 0
        var received = 0
        var mismatches = 0
        var stalled = false
    }

    @Test("100,000 messages go DEALER → ROUTER → DEALER and none is lost", arguments: Transport.allCases)
    func hundredThousandRoundTrips(transport: Transport) async throws {
        let total = 100_000
        // Well under the default high-water mark of 1000, so neither side ever has to drop or block.
        let window = 500

        let outcome = try await onSocketThread { context in
            let router = try context.makeTestSocket(.router)
            let endpoint: String
            do {
                try router.setOption(.routerMandatory, to: true)
                endpoint = try router.bindToFreeEndpoint(transport)
            } catch {
                router.close()
                throw error
            }
            // The ROUTER moves to its own thread and is used only there from now on.
            let echo = ZMQSocketThread.start(name: "echo") { thread in
                defer { router.close() }
                while !thread.isStopRequested {
                    guard try router.poll(.readable, timeoutMilliseconds: 50).contains(.readable) else { continue }
                    while let message = try router.tryReceiveMessage() {
                        try router.send(message)
                    }
                }
            }

            let pipeline = Result { () throws -> PipelineOutcome in
                let dealer = try context.makeTestSocket(.dealer)
                defer { dealer.close() }
                try dealer.connect(endpoint)
                return try Self.pump(dealer, total: total, window: window)
            }
            echo.requestStop()
            try echo.join()
            return try pipeline.get()
        }

        #expect(outcome.stalled == false)
        #expect(outcome.sent == total)
        #expect(outcome.received == total)
        #expect(outcome.mismatches == 0)
    }

    /// Keeps up to `window` messages in flight and checks every echo arrives whole and in order.
    private static func pump(_ dealer: ZMQSocket, total: Int, window: Int) throws -> PipelineOutcome {
        func message(_ sequence: Int) -> [[UInt8]] {
            withUnsafeBytes(of: UInt64(sequence).littleEndian) { [Array($0), bytes("payload \(sequence)")] }
        }
        var outcome = PipelineOutcome()
        while outcome.received < total {
            while outcome.sent < total, outcome.sent - outcome.received < window {
                try dealer.send(message(outcome.sent))
                outcome.sent += 1
            }
            // Five quiet seconds means a message was lost: stop rather than hang.
            guard let reply = try dealer.receive(within: 5000) else {
                outcome.stalled = true
                break
            }
            if reply != message(outcome.received) {
                outcome.mismatches += 1
            }
            outcome.received += 1
        }
        return outcome
    }
}
