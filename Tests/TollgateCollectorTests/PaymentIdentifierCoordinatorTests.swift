import Foundation
import Logging
import Testing
import TollgateCollector
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport
import TollgateWire
import TollgateX402

/// `PaymentCoordinator` with the payment-identifier extension, against a real redis-server and a
/// facilitator over HTTP that counts its calls: a settled id replays its kept response without
/// asking the facilitator, another payment under the id conflicts, one in flight waits, a released
/// id is free, an oversized response is not kept, junk ids are refused, and no id changes nothing.
@Suite("Payment identifiers in the coordinator", .serialized)
struct PaymentIdentifierCoordinatorTests {
    static let keyID = String(repeating: "0", count: 63) + "7"
    static let route = "http://api.example.com/v1/echo"
    static let asset = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    static let payTo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
    static let id = "pay_7d5d747be160e280504c099d984bcfe0"

    /// A v2 payment for the route's price; `nonce` tells payments apart, `extensions` is sent as is.
    static func header(nonce: Int, extensions: Any? = nil) -> Data {
        var object: [String: Any] = [
            "x402Version": 2, "resource": ["url": route],
            "accepted": ["scheme": "exact", "network": "eip155:84532", "amount": "10000", "asset": asset, "payTo": payTo,
                         "maxTimeoutSeconds": 60, "extra": ["name": "USDC", "version": "2"]] as [String: Any],
            "payload": ["signature": "0x" + String(repeating: "ab", count: 65), "authorization": [
                "from": StubFacilitator.payer, "to": payTo, "value": "10000", "validAfter": "0", "validBefore": "9999999999",
                "nonce": "0x" + String(repeating: "cd", count: 31) + String(format: "%02x", nonce),
            ]] as [String: Any],
        ]
        if let extensions { object["extensions"] = extensions }
        let json = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return Data(json.base64EncodedString().utf8)
    }

    static func withID(_ id: Any) -> [String: Any] {
        ["payment-identifier": ["info": ["required": false, "id": id]]]
    }

    static func request(_ phase: Tollgate_V1_PaymentRequest.Phase, _ header: Data, claimID: String = "") -> Tollgate_V1_PaymentRequest {
        var request = Tollgate_V1_PaymentRequest()
        request.phase = phase
        request.keyID = keyID
        request.feature = "api_call"
        request.route = route
        request.x402Version = 2
        request.paymentHeader = header
        request.claimID = claimID
        request.sidecarID = "s1"
        request.bootEpoch = 1
        return request
    }

    static func response(bytes: Int) -> Tollgate_V1_PaidResponse {
        var response = Tollgate_V1_PaidResponse()
        response.status = 200
        var type = Tollgate_V1_HeaderField()
        type.name = "content-type"
        type.value = "application/json"
        response.headers = [type]
        response.body = Data(repeating: UInt8(ascii: "x"), count: bytes)
        return response
    }

    func withCoordinator(maxResponseBytes: Int = 4_096, _ body: (PaymentCoordinator, StubFacilitator, RedisClient) async throws -> Void) async throws {
        _ = TestMetrics.shared
        let facilitator = try await StubFacilitator()
        defer { facilitator.stop() }
        try await withRedisServer { server in
            let plan = Plan(name: "payg", features: [.apiCall: .metered(MeteredFeature(
                limit: 5, reset: .day, policy: .paymentRequired(price: Money(atomicUnits: 10_000), buys: .singleCall)
            ))])
            _ = try server.withConnection { try KeyRegistry().load(plans: ["payg": plan], keys: [KeyRecord(id: Self.keyID, name: "payer", plan: "payg")], on: $0) }
            var settings = X402Settings(network: X402Network("eip155:84532")!, asset: EVMAddress(Self.asset)!, payTo: EVMAddress(Self.payTo)!,
                                        extraName: "USDC", extraVersion: "2", facilitatorURL: facilitator.baseURL)
            settings.idempotencyMaxResponseBytes = maxResponseBytes
            let client = RedisClient(configuration: server.configuration)
            let coordinator = PaymentCoordinator(
                settings: settings, facilitator: FacilitatorClient(baseURL: facilitator.baseURL, timeout: .seconds(5)), redis: client,
                updates: nil, logger: Logger(label: "test")
            )
            do {
                try await body(coordinator, facilitator, client)
                await client.shutdown()
            } catch {
                await client.shutdown()
                throw error
            }
        }
    }

    func ledger(_ redis: RedisClient) async throws -> Int {
        try await redis.withConnection { try PaymentStore().settlements(keyID: Self.keyID, on: $0).count }
    }

    @Test("a settled id replays its kept response to a retry, without the facilitator; another payment conflicts; one in flight waits")
    func replayConflictInFlight() async throws {
        try await withCoordinator { coordinator, facilitator, redis in
            let payment = Self.header(nonce: 1, extensions: Self.withID(Self.id))
            let lookup = await coordinator.handle(Self.request(.lookup, payment))
            #expect(lookup.success && !lookup.hasReplay && lookup.errorReason.isEmpty)
            let claimed = await coordinator.handle(Self.request(.verifyAndClaim, payment))
            #expect(claimed.success && !claimed.claimID.isEmpty)
            // In flight: the same payment waits, another one under the id conflicts; neither asks the facilitator.
            #expect(await coordinator.handle(Self.request(.lookup, payment)).errorReason == "payment_in_progress")
            #expect(await coordinator.handle(Self.request(.verifyAndClaim, payment)).errorReason == "payment_in_progress")
            let other = Self.header(nonce: 2, extensions: Self.withID(Self.id))
            #expect(await coordinator.handle(Self.request(.verifyAndClaim, other)).errorReason == "payment_identifier_conflict")
            let calls10 = try await facilitator.calls()
            #expect(calls10 == [1, 0])
            var settle = Self.request(.settle, payment, claimID: claimed.claimID)
            settle.response = Self.response(bytes: 100)
            let settled = await coordinator.handle(settle)
            #expect(settled.success && settled.transaction == StubFacilitator.transaction)
            // The retry, as a lookup and as a fresh verify: the kept response and the same PAYMENT-RESPONSE.
            for phase in [Tollgate_V1_PaymentRequest.Phase.lookup, .verifyAndClaim] {
                let retry = await coordinator.handle(Self.request(phase, payment))
                #expect(retry.success && retry.hasReplay, "\(phase)")
                #expect(retry.replay == Self.response(bytes: 100))
                #expect(retry.paymentResponseHeader == settled.paymentResponseHeader && !retry.paymentResponseHeader.isEmpty)
            }
            #expect(await coordinator.handle(Self.request(.lookup, other)).errorReason == "payment_identifier_conflict")
            let calls11 = try await facilitator.calls()
            #expect(calls11 == [1, 1])
            #expect(try await self.ledger(redis) == 1)
            #expect(TestMetrics.shared.value("tollgate_collector_payment_identifier_total", [("result", "replayed")]) >= 2)
        }
    }

    @Test("a released id is free for a new attempt; an oversized response is not kept and its retry is told so")
    func releaseAndOversized() async throws {
        try await withCoordinator(maxResponseBytes: 64) { coordinator, facilitator, redis in
            let payment = Self.header(nonce: 3, extensions: Self.withID(Self.id))
            let first = await coordinator.handle(Self.request(.verifyAndClaim, payment))
            #expect(first.success)
            #expect(await coordinator.handle(Self.request(.release, payment, claimID: first.claimID)).success)
            let lookup = await coordinator.handle(Self.request(.lookup, payment))
            #expect(lookup.success && !lookup.hasReplay)
            let second = await coordinator.handle(Self.request(.verifyAndClaim, payment))
            #expect(second.success && second.claimID != first.claimID)
            var settle = Self.request(.settle, payment, claimID: second.claimID)
            settle.response = Self.response(bytes: 100)
            let settled = await coordinator.handle(settle)
            #expect(settled.success)
            let retry = await coordinator.handle(Self.request(.lookup, payment))
            #expect(!retry.success && !retry.hasReplay && retry.errorReason == "payment_response_not_kept")
            #expect(retry.paymentResponseHeader == settled.paymentResponseHeader)
            let calls21 = try await facilitator.calls()
            #expect(calls21 == [2, 1])
            #expect(try await self.ledger(redis) == 1)
        }
    }

    @Test("junk ids are refused before the facilitator; a payment without an id is claimed once as always")
    func junkAndNoID() async throws {
        try await withCoordinator { coordinator, facilitator, _ in
            let junk: [Any] = [Self.withID("short"), Self.withID(12345), Self.withID(String(repeating: "a", count: 4_000)),
                               ["payment-identifier": "nope"], ["payment-identifier": ["info": [1, 2]]]]
            for (index, extensions) in junk.enumerated() {
                let result = await coordinator.handle(Self.request(.verifyAndClaim, Self.header(nonce: 10 + index, extensions: extensions)))
                #expect(!result.success && result.errorReason == "invalid_payment_identifier", "\(extensions)")
            }
            let calls00 = try await facilitator.calls()
            #expect(calls00 == [0, 0])
            // The server's declaration echoed without an id is no id at all.
            let echoed = Self.header(nonce: 20, extensions: ["payment-identifier": ["info": ["required": false]]])
            let first = await coordinator.handle(Self.request(.verifyAndClaim, echoed))
            #expect(first.success)
            #expect(await coordinator.handle(Self.request(.verifyAndClaim, echoed)).errorReason == "invalid_exact_evm_nonce_already_used")
        }
    }
}
