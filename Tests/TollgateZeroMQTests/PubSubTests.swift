import Testing
import TollgateZeroMQ

@Suite("PUB/SUB")
struct PubSubTests {
    @Test("a SUB gets the topics it subscribed to by prefix and nothing else", arguments: Transport.allCases)
    func topicFiltering(transport: Transport) async throws {
        let received = try await onSocketThread { context in
            let pub = try context.makeTestSocket(.pub)
            defer { pub.close() }
            let endpoint = try pub.bindToFreeEndpoint(transport)
            let sub = try context.makeTestSocket(.sub)
            defer { sub.close() }
            try sub.subscribe("a")
            try sub.connect(endpoint)

            // A PUB drops messages for subscriptions it has not heard of yet, so probe until one
            // gets through instead of sleeping and hoping.
            let limit = deadline(seconds: 5)
            var subscribed = false
            while !subscribed, ContinuousClock.now < limit {
                try pub.send([bytes("a-probe"), []])
                subscribed = try sub.receive(within: 20) != nil
            }
            guard subscribed else { return [[String]]() }

            for (topic, payload) in [("b", "1"), ("a", "2"), ("beta", "3"), ("alpha", "4"), ("b", "5"), ("a", "end")] {
                try pub.send([bytes(topic), bytes(payload)])
            }
            // One connection keeps order, so once "end" arrives any "b" would have arrived already.
            var received: [[String]] = []
            while let message = try sub.receive(within: 5000) {
                let frames = message.map(text)
                if frames[0] == "a-probe" { continue }
                received.append(frames)
                if frames == ["a", "end"] { break }
            }
            return received
        }

        #expect(received == [["a", "2"], ["alpha", "4"], ["a", "end"]])
    }

    @Test("after unsubscribing, a SUB stops getting the topic", arguments: Transport.allCases)
    func unsubscribe(transport: Transport) async throws {
        let received = try await onSocketThread { context in
            let pub = try context.makeTestSocket(.pub)
            defer { pub.close() }
            let endpoint = try pub.bindToFreeEndpoint(transport)
            let sub = try context.makeTestSocket(.sub)
            defer { sub.close() }
            try sub.subscribe("a")
            try sub.subscribe("z")
            try sub.connect(endpoint)

            let limit = deadline(seconds: 5)
            var subscribed = false
            while !subscribed, ContinuousClock.now < limit {
                try pub.send([bytes("z"), bytes("probe")])
                subscribed = try sub.receive(within: 20) != nil
            }
            try sub.unsubscribe("a")
            // The unsubscribe travels the same path as the probes; when a probe sent after it
            // arrives, the publisher has applied it.
            var marker: [UInt8] = []
            var received: [String] = []
            var sequence = 0
            while subscribed, ContinuousClock.now < limit {
                sequence += 1
                marker = bytes("after-\(sequence)")
                try pub.send([bytes("a"), bytes("dropped")])
                try pub.send([bytes("z"), marker])
                var sawMarker = false
                while !sawMarker, let message = try sub.receive(within: 200) {
                    received.append(text(message[0]))
                    sawMarker = message[1] == marker
                }
                // Keep only the last round: earlier "a"s may predate the unsubscribe.
                if sawMarker, received.count == 1 { return received }
                received = []
            }
            return received
        }

        #expect(received == ["z"])
    }
}
