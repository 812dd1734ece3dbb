import Testing
import TollgateZeroMQ

@Suite("CURVE", .enabled(if: ZMQLibrary.has("curve"), "libzmq built without CURVE"))
struct CurveTests {
    struct Observed: Sendable {
        var serverGot: [[[UInt8]]] = []
        var clientGot: [[UInt8]]?
        var wrongKeyClientGot: [[UInt8]]?
        var plainClientGot: [[UInt8]]?
    }

    // TCP only: libzmq applies security mechanisms to network transports, not inproc.
    @Test("a client with the server's key gets through; one with the wrong key or none gets nothing")
    func curveExchange() async throws {
        let observed = try await onSocketThread { context in
            let serverKeys = try ZMQCurveKeyPair.generate()
            let router = try context.makeTestSocket(.router)
            defer { router.close() }
            try router.setOption(.curveServer, to: true)
            try router.setOption(.curveSecretKey, to: serverKeys.secretKey)
            let endpoint = try router.bindToFreeEndpoint(.tcp)

            func client(serverKey: ZMQCurveKey?) throws -> ZMQSocket {
                let dealer = try context.makeTestSocket(.dealer)
                do {
                    if let serverKey {
                        let keys = try ZMQCurveKeyPair.generate()
                        try dealer.setOption(.curveServerKey, to: serverKey)
                        try dealer.setOption(.curvePublicKey, to: keys.publicKey)
                        try dealer.setOption(.curveSecretKey, to: keys.secretKey)
                    }
                    try dealer.connect(endpoint)
                } catch {
                    dealer.close()
                    throw error
                }
                return dealer
            }

            let wrongKeyClient = try client(serverKey: try ZMQCurveKeyPair.generate().publicKey)
            defer { wrongKeyClient.close() }
            let plainClient = try client(serverKey: nil)
            defer { plainClient.close() }
            let goodClient = try client(serverKey: serverKeys.publicKey)
            defer { goodClient.close() }

            // The outsiders send first; their messages must never reach the server.
            try wrongKeyClient.send([bytes("from wrong key")])
            try plainClient.send([bytes("from plaintext")])
            try goodClient.send([bytes("hello")])

            var observed = Observed()
            if let request = try router.receive(within: 5000) {
                observed.serverGot.append(request)
                try router.send([request[0], bytes("welcome")])
            }
            observed.clientGot = try goodClient.receive(within: 5000)
            // Give the outsiders' handshakes time to fail (several reconnects) before concluding.
            while let late = try router.receive(within: 500) {
                observed.serverGot.append(late)
            }
            observed.wrongKeyClientGot = try wrongKeyClient.receive(within: 0)
            observed.plainClientGot = try plainClient.receive(within: 0)
            return observed
        }

        #expect(observed.serverGot.map { $0.dropFirst().map(text) } == [["hello"]])
        #expect(observed.clientGot == [bytes("welcome")])
        #expect(observed.wrongKeyClientGot == nil)
        #expect(observed.plainClientGot == nil)
    }
}
