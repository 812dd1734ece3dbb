import Testing
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

/// Payment claims and the settlement ledger against a real redis-server.
@Suite("Payments in Redis", .serialized)
struct PaymentStoreTests {
    let payer = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
    let nonce = "0x" + String(repeating: "ab", count: 32)
    let validBefore = testNow.advanced(byNanoseconds: 60_000_000_000)

    @Test("a payment is claimed once fleet-wide; release frees it only for its owner; a settled claim stays")
    func claims() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let store = PaymentStore()
                let first = try store.claim(payer: payer, nonce: nonce, keyID: keyID(1), claimID: "c1",
                                            validBefore: validBefore, at: testNow, on: connection)
                #expect(first == .claimed(claimID: "c1"))
                // Another sidecar (or key), even with the address in another case: a replay.
                let replay = try store.claim(payer: payer.lowercased(), nonce: nonce.uppercased().replacingOccurrences(of: "0X", with: "0x"),
                                             keyID: keyID(2), claimID: "c2", validBefore: validBefore, at: testNow, on: connection)
                #expect(replay == .alreadyUsed)
                try store.release(payer: payer, nonce: nonce, keyID: keyID(2), claimID: "c2", on: connection)  // not the owner
                #expect(try store.claim(payer: payer, nonce: nonce, keyID: keyID(1), claimID: "c3",
                                        validBefore: validBefore, at: testNow, on: connection) == .alreadyUsed)
                try store.release(payer: payer, nonce: nonce, keyID: keyID(1), claimID: "c1", on: connection)
                #expect(try store.claim(payer: payer, nonce: nonce, keyID: keyID(1), claimID: "c4",
                                        validBefore: validBefore, at: testNow, on: connection) == .claimed(claimID: "c4"))
                try store.markSettled(payer: payer, nonce: nonce, claimID: "c4", transaction: "0xfeed", on: connection)
                try store.release(payer: payer, nonce: nonce, keyID: keyID(1), claimID: "c4", on: connection)  // too late
                #expect(try store.claim(payer: payer, nonce: nonce, keyID: keyID(1), claimID: "c5",
                                        validBefore: validBefore, at: testNow, on: connection) == .alreadyUsed)
                let ttl = try connection.send("TTL", RedisArgument(RedisKeys.paymentClaim(payer: payer.lowercased(), nonce: nonce))).int ?? 0
                #expect(ttl > 7 * 86_400 && ttl <= 7 * 86_400 + 60)
                // A payment-identifier id already claimed answers for itself, and leaves a fresh nonce free.
                let other = "0x" + String(repeating: "cd", count: 32)
                let pid = PaymentIdentifierClaim(id: "pay_0123456789abcdef", fingerprint: String(repeating: "a", count: 64), ttlSeconds: 3_600)
                #expect(try store.claim(payer: payer, nonce: other, identifier: pid, keyID: keyID(1), claimID: "c6",
                                        validBefore: validBefore, at: testNow, on: connection) == .claimed(claimID: "c6"))
                let third = "0x" + String(repeating: "ef", count: 32)
                #expect(try store.claim(payer: payer, nonce: third, identifier: pid, keyID: keyID(1), claimID: "c7",
                                        validBefore: validBefore, at: testNow, on: connection) == .identifierTaken(.inProgress))
                #expect(try store.claim(payer: payer, nonce: third, keyID: keyID(1), claimID: "c8",
                                        validBefore: validBefore, at: testNow, on: connection) == .claimed(claimID: "c8"))
            }
        }
    }

    @Test("a settlement is recorded and credited once, and the ledger reads it back")
    func ledger() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let store = PaymentStore()
                let record = SettlementRecord(
                    keyID: keyID(3), claimID: "c1", payer: payer, amountAtomic: 10_000, asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                    network: "eip155:84532", transaction: "0x" + String(repeating: "1", count: 64), route: "GET /v1/echo",
                    feature: "api_call", periodID: "d20261123", creditedUnits: 100, grant: "units:100"
                )
                #expect(try store.record(record, at: testNow, on: connection))
                #expect(try !store.record(record, at: testNow, on: connection))  // a retry changes nothing
                let counters = try makeStore().usage(keyID: keyID(3), feature: "api_call", periodID: "d20261123", on: connection)
                #expect(counters.credits == 100)
                let ledger = try store.settlements(keyID: keyID(3), on: connection)
                #expect(ledger.count == 1)
                var expected = record
                expected.atMilliseconds = testNow.milliseconds
                #expect(ledger.first == expected)
                let paid = try connection.send("HMGET", RedisArgument(RedisKeys.usage(keyID: keyID(3), feature: "api_call", periodID: "d20261123")),
                                               "pay_n", "pay_amt").array?.compactMap(\.string)
                #expect(paid == ["1", "10000"])
            }
        }
    }

    @Test("a settlement in one round trip: claim marked settled, id kept, ledger and credit written once, extra reads answered")
    func pipelinedSettlement() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let store = PaymentStore()
                let pid = PaymentIdentifierClaim(id: "pay_fedcba9876543210", fingerprint: String(repeating: "b", count: 64), ttlSeconds: 3_600)
                #expect(try store.claim(payer: payer, nonce: nonce, identifier: pid, keyID: keyID(4), claimID: "c1",
                                        validBefore: validBefore, at: testNow, on: connection) == .claimed(claimID: "c1"))
                try connection.send("SET", RedisArgument(RedisKeys.version), "41")
                let record = SettlementRecord(
                    keyID: keyID(4), claimID: "c1", payer: payer, amountAtomic: 1_000, asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                    network: "eip155:84532", transaction: "0x" + String(repeating: "2", count: 64), route: "GET /v1/echo",
                    feature: "api_call", periodID: "d20261123", creditedUnits: 1, grant: "call"
                )
                let kept = SettledIdentifier(id: pid.id, paymentResponse: "eyJzdWNjZXNzIjp0cnVlfQ==", response: Array("HTTP/1.1 200".utf8), ttlSeconds: 3_600)
                let (recorded, extra) = try store.settle(record, nonce: nonce, identifier: kept, at: testNow,
                                                         alongWith: [KeyRegistry.versionStep], on: connection)
                #expect(recorded)
                #expect(try KeyRegistry.version(extra[0]) == 41)
                // The claim is settled: its owner cannot release it, and the payment cannot be claimed again.
                try store.release(payer: payer, nonce: nonce, keyID: keyID(4), claimID: "c1", on: connection)
                #expect(try store.claim(payer: payer, nonce: nonce, keyID: keyID(4), claimID: "c2",
                                        validBefore: validBefore, at: testNow, on: connection) == .alreadyUsed)
                // The id answers with the kept response.
                guard case .settled = try store.identifierState(keyID: keyID(4), id: pid.id, fingerprint: pid.fingerprint, on: connection) else {
                    Issue.record("the payment identifier was not settled")
                    return
                }
                // A retry records nothing twice.
                #expect(try !store.settle(record, nonce: nonce, identifier: kept, at: testNow, on: connection).recorded)
                #expect(try store.settlements(keyID: keyID(4), on: connection).count == 1)
                #expect(try makeStore().usage(keyID: keyID(4), feature: "api_call", periodID: "d20261123", on: connection).credits == 1)
            }
        }
    }
}
