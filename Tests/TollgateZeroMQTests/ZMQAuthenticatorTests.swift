import Synchronization
import Testing
import TollgateZeroMQ

@Suite("ZAP authenticator", .enabled(if: ZMQLibrary.has("curve"), "libzmq built without CURVE"))
struct ZMQAuthenticatorTests {
    struct Observed: Sendable {
        var serverGot: [String] = []
        var allowedGotReply = false
        var decisions: [(Bool, String)] = []
        var allowedKey = ""
        var strangerKey = ""
    }

    @Test("only a client whose public key is on the list gets through; each decision is reported")
    func allowList() async throws {
        let observed = try await onSocketThread { context in
            let decisions = Mutex<[(Bool, String)]>([])
            let serverKeys = try ZMQCurveKeyPair.generate()
            let allowedKeys = try ZMQCurveKeyPair.generate()
            let strangerKeys = try ZMQCurveKeyPair.generate()
            let zap = try ZMQAuthenticator.start(context: context, allowedClientKeys: [allowedKeys.publicKey]) { admitted, key in
                decisions.withLock { $0.append((admitted, key)) }
            }
            defer { zap.stop() }
            let router = try context.makeTestSocket(.router)
            defer { router.close() }
            try router.setOption(.curveServer, to: true)
            try router.setOption(.curveSecretKey, to: serverKeys.secretKey)
            let endpoint = try router.bindToFreeEndpoint(.tcp)

            func client(_ keys: ZMQCurveKeyPair) throws -> ZMQSocket {
                let dealer = try context.makeTestSocket(.dealer)
                try dealer.setOption(.curveServerKey, to: serverKeys.publicKey)
                try dealer.setOption(.curvePublicKey, to: keys.publicKey)
                try dealer.setOption(.curveSecretKey, to: keys.secretKey)
                try dealer.connect(endpoint)
                return dealer
            }
            // The stranger knows the server's public key (it is public) but is not on the list.
            let stranger = try client(strangerKeys)
            defer { stranger.close() }
            let allowed = try client(allowedKeys)
            defer { allowed.close() }
            try stranger.send([bytes("from a stranger")])
            try allowed.send([bytes("hello")])

            var observed = Observed()
            while let message = try router.receive(within: 1_000) {
                observed.serverGot.append(text(message[1]))
                try router.send([message[0], bytes("welcome")])
            }
            observed.allowedGotReply = try allowed.receive(within: 1_000) == [bytes("welcome")]
            observed.decisions = decisions.withLock { $0 }
            observed.allowedKey = allowedKeys.publicKey.z85
            observed.strangerKey = strangerKeys.publicKey.z85
            return observed
        }
        #expect(observed.serverGot == ["hello"])
        #expect(observed.allowedGotReply)
        #expect(observed.decisions.contains { $0.0 && $0.1 == observed.allowedKey })
        #expect(observed.decisions.contains { !$0.0 && $0.1 == observed.strangerKey })
        #expect(!observed.decisions.contains { $0.0 && $0.1 == observed.strangerKey })
    }

    @Test("malformed and non-CURVE ZAP requests are refused")
    func refusals() {
        let key = [UInt8](repeating: 7, count: 32)
        let base: [[UInt8]] = [bytes("1.0"), bytes("42"), [], bytes("127.0.0.1"), [], bytes("CURVE"), key]
        let ok = ZMQAuthenticator.answer(base, allowed: [key])
        #expect(ok.admitted && text(ok.reply[2]) == "200" && ok.reply[1] == bytes("42"))
        #expect(ZMQAuthenticator.answer(base, allowed: []).admitted == false)
        var plain = base
        plain[5] = bytes("NULL")
        plain.removeLast()
        #expect(text(ZMQAuthenticator.answer(plain, allowed: [key]).reply[2]) == "400")
        var shortKey = base
        shortKey[6] = [1, 2, 3]
        #expect(ZMQAuthenticator.answer(shortKey, allowed: [key]).admitted == false)
        let junk = ZMQAuthenticator.answer([bytes("2.0"), bytes("1")], allowed: [key])
        #expect(text(junk.reply[2]) == "500" && junk.who == nil)
        #expect(text(ZMQAuthenticator.answer([], allowed: [key]).reply[2]) == "500")
    }
}
