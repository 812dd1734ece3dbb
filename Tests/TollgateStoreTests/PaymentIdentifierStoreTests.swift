import Testing
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

/// Payment-identifier ids (x402 `payment-identifier`) against a real redis-server: claimed with the
/// nonce, settled together with the kept response, released with the claim.
@Suite("Payment identifiers in Redis", .serialized)
struct PaymentIdentifierStoreTests {
    let payer = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
    let validBefore = testNow.advanced(byNanoseconds: 60_000_000_000)
    let mine = String(repeating: "a", count: 64)
    let theirs = String(repeating: "b", count: 64)
    let id = "pay_7d5d747be160e280504c099d984bcfe0"

    func nonce(_ n: Int) -> String { "0x" + String(repeating: "ab", count: 31) + "0\(n)" }

    @Test("a settled id keeps its response and transaction; the same fingerprint reads it, another one conflicts")
    func settledKeepsTheResponse() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let store = PaymentStore()
                let claim = PaymentIdentifierClaim(id: id, fingerprint: mine, ttlSeconds: 3_600)
                #expect(try store.identifierState(keyID: keyID(1), id: id, fingerprint: mine, on: connection) == .unknown)
                #expect(try store.claim(payer: payer, nonce: nonce(1), identifier: claim, keyID: keyID(1), claimID: "c1",
                                        validBefore: validBefore, at: testNow, on: connection) == .claimed(claimID: "c1"))
                #expect(try store.identifierState(keyID: keyID(1), id: id, fingerprint: mine, on: connection) == .inProgress)
                #expect(try store.identifierState(keyID: keyID(1), id: id, fingerprint: theirs, on: connection) == .conflict)
                // Another key's id space is its own (the specification: scope ids by tenant).
                #expect(try store.identifierState(keyID: keyID(2), id: id, fingerprint: mine, on: connection) == .unknown)
                // Only the owner settles it.
                let body: [UInt8] = [0, 1, 2, 0xFF, 0x0A] + Array("kept".utf8)
                #expect(try !store.settleIdentifier(id, keyID: keyID(1), claimID: "other", transaction: "0x1", paymentResponse: "e30=",
                                                    response: body, ttlSeconds: 120, on: connection))
                #expect(try store.settleIdentifier(id, keyID: keyID(1), claimID: "c1", transaction: "0xfeed", paymentResponse: "eyJ9",
                                                   response: body, ttlSeconds: 120, on: connection))
                #expect(try store.identifierState(keyID: keyID(1), id: id, fingerprint: mine, on: connection)
                        == .settled(paymentResponse: "eyJ9", response: body))
                #expect(try store.identifierState(keyID: keyID(1), id: id, fingerprint: theirs, on: connection) == .conflict)
                let key = RedisArgument(RedisKeys.paymentIdentifier(keyID: keyID(1), id: id))
                let ttl = try connection.send("TTL", key).int ?? 0
                #expect(ttl > 100 && ttl <= 120)
                #expect(try connection.send("HGET", key, "tx").string == "0xfeed")
                // Settled: a release is too late, a second claim gets the settled state, not a new claim.
                try store.release(payer: payer, nonce: nonce(1), paymentIdentifier: id, keyID: keyID(1), claimID: "c1", on: connection)
                #expect(try store.claim(payer: payer, nonce: nonce(2), identifier: claim, keyID: keyID(1), claimID: "c2",
                                        validBefore: validBefore, at: testNow, on: connection)
                        == .identifierTaken(.settled(paymentResponse: "eyJ9", response: body)))
                // The fresh nonce was never claimed by that attempt.
                #expect(try store.claim(payer: payer, nonce: nonce(2), keyID: keyID(1), claimID: "c3",
                                        validBefore: validBefore, at: testNow, on: connection) == .claimed(claimID: "c3"))
            }
        }
    }

    @Test("a settled id without a kept response reads as settled with none; a released id is free again")
    func releaseAndTooLarge() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let store = PaymentStore()
                let claim = PaymentIdentifierClaim(id: id, fingerprint: mine, ttlSeconds: 3_600)
                #expect(try store.claim(payer: payer, nonce: nonce(1), identifier: claim, keyID: keyID(1), claimID: "c1",
                                        validBefore: validBefore, at: testNow, on: connection) == .claimed(claimID: "c1"))
                try store.release(payer: payer, nonce: nonce(1), paymentIdentifier: id, keyID: keyID(1), claimID: "c1", on: connection)
                #expect(try store.identifierState(keyID: keyID(1), id: id, fingerprint: theirs, on: connection) == .unknown)
                // Free for any payment now, even another one.
                let other = PaymentIdentifierClaim(id: id, fingerprint: theirs, ttlSeconds: 3_600)
                #expect(try store.claim(payer: payer, nonce: nonce(1), identifier: other, keyID: keyID(1), claimID: "c2",
                                        validBefore: validBefore, at: testNow, on: connection) == .claimed(claimID: "c2"))
                #expect(try store.settleIdentifier(id, keyID: keyID(1), claimID: "c2", transaction: "0xbeef", paymentResponse: "eyJ9",
                                                   response: nil, ttlSeconds: 3_600, on: connection))
                #expect(try store.identifierState(keyID: keyID(1), id: id, fingerprint: theirs, on: connection)
                        == .settled(paymentResponse: "eyJ9", response: nil))
            }
        }
    }

    @Test("a nonce already used frees the id it came with; bad ids and fingerprints are refused before Redis")
    func nonceUsedAndBadInput() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let store = PaymentStore()
                #expect(try store.claim(payer: payer, nonce: nonce(1), keyID: keyID(1), claimID: "c1",
                                        validBefore: validBefore, at: testNow, on: connection) == .claimed(claimID: "c1"))
                let claim = PaymentIdentifierClaim(id: id, fingerprint: mine, ttlSeconds: 3_600)
                #expect(try store.claim(payer: payer, nonce: nonce(1), identifier: claim, keyID: keyID(1), claimID: "c2",
                                        validBefore: validBefore, at: testNow, on: connection) == .alreadyUsed)
                #expect(try store.identifierState(keyID: keyID(1), id: id, fingerprint: mine, on: connection) == .unknown)
                for bad in ["", "has space in it here", "tg:{x}:pid:y", String(repeating: "x", count: 129), "ünïcödé_payment_id"] {
                    #expect(throws: StoreError.self) {
                        try store.identifierState(keyID: keyID(1), id: bad, fingerprint: mine, on: connection)
                    }
                }
                #expect(throws: StoreError.self) {
                    try store.identifierState(keyID: keyID(1), id: id, fingerprint: "not hex", on: connection)
                }
                #expect(try connection.send("DBSIZE").int == 1)  // only the first nonce claim
            }
        }
    }
}
