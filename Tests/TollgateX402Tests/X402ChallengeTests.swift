import Foundation
import Testing
import TollgateCore
import TollgateX402

@Suite struct X402ChallengeTests {
    typealias F = X402TestFixtures

    static let expectedV2 = #"{"accepts":[{"amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","#
        + #""extra":{"name":"USDC","version":"2"},"maxTimeoutSeconds":60,"network":"eip155:84532","#
        + #""payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","scheme":"exact"}],"error":"payment_required","#
        + #""extensions":{"payment-identifier":{"info":{"required":false},"schema":{"#
        + #""$schema":"https://json-schema.org/draft/2020-12/schema","properties":{"id":{"maxLength":128,"minLength":16,"#
        + #""pattern":"^[a-zA-Z0-9_-]+$","type":"string"},"required":{"type":"boolean"}},"required":["required"],"#
        + #""type":"object"}}},"resource":{"description":"Suche über Daten","mimeType":"application/json","#
        + #""url":"https://api.example.com/v1/search?q=tolls"},"x402Version":2}"#

    static let expectedV1 = #"{"accepts":[{"asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","#
        + #""description":"Suche über Daten","extra":{"name":"USDC","version":"2"},"maxAmountRequired":"10000","#
        + #""maxTimeoutSeconds":60,"mimeType":"application/json","network":"base-sepolia","#
        + #""payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","resource":"https://api.example.com/v1/search?q=tolls","#
        + #""scheme":"exact"}],"error":"payment_required","x402Version":1}"#

    @Test func headerIsBase64OfTheExactV2JSON() throws {
        let rendered = try F.challenge().render()
        let json = try #require(Data(base64Encoded: rendered.paymentRequiredHeader))
        #expect(String(decoding: json, as: UTF8.self) == Self.expectedV2)
        #expect(rendered.paymentRequiredHeader.utf8.count % 4 == 0)
    }

    @Test func bodyIsTheExactV1JSON() throws {
        let rendered = try F.challenge().render()
        #expect(String(decoding: rendered.body, as: UTF8.self) == Self.expectedV1)
    }

    @Test func v2FieldsHaveTheSpecifiedJSONTypes() throws {
        let rendered = try F.challenge().render()
        let root = try F.object(try #require(Data(base64Encoded: rendered.paymentRequiredHeader)))
        #expect(Set(root.keys) == ["x402Version", "error", "resource", "accepts", "extensions"])
        #expect(root["x402Version"] as? Int == 2)
        // The payment-identifier extension is offered, optional, with the schema of its info.
        let identifier = try #require((root["extensions"] as? [String: Any])?["payment-identifier"] as? [String: Any])
        #expect(identifier["info"] as? [String: Bool] == ["required": false])
        let schema = try #require(identifier["schema"] as? [String: Any])
        #expect(schema["required"] as? [String] == ["required"])
        let idSchema = try #require((schema["properties"] as? [String: Any])?["id"] as? [String: Any])
        #expect(idSchema["minLength"] as? Int == 16 && idSchema["maxLength"] as? Int == 128 && idSchema["type"] as? String == "string")
        let accepts = try #require(root["accepts"] as? [[String: Any]])
        try #require(accepts.count == 1)
        let requirement = accepts[0]
        #expect(Set(requirement.keys) == ["scheme", "network", "amount", "asset", "payTo", "maxTimeoutSeconds", "extra"])
        // Amounts are strings of digits; the timeout is a number.
        #expect(requirement["amount"] as? String == "10000")
        #expect(requirement["maxTimeoutSeconds"] as? Int == 60)
        #expect(requirement["network"] as? String == "eip155:84532")
        #expect(requirement["extra"] as? [String: String] == ["name": "USDC", "version": "2"])
        let resource = try #require(root["resource"] as? [String: String])
        #expect(resource == ["url": F.resource.url, "description": "Suche über Daten", "mimeType": "application/json"])
    }

    @Test func v1BodyOmitsOutputSchema() throws {
        let root = try F.object(try F.challenge().render().body)
        let requirement = try #require((root["accepts"] as? [[String: Any]])?.first)
        #expect(requirement["outputSchema"] == nil)
        #expect(requirement["maxAmountRequired"] as? String == "10000")
        #expect(root["x402Version"] as? Int == 1)
    }

    @Test(arguments: [
        ("0.01", UInt64(10_000)), ("1", 1_000_000), ("0.000001", 1), ("1234.5", 1_234_500_000),
    ])
    func amountsAreIntegerAtomicUnits(decimal: String, atomic: UInt64) throws {
        let challenge = try X402Challenge(
            settings: F.settings(), price: Money(decimal: decimal, decimals: 6), resource: F.resource, error: "e"
        )
        let decoded = try X402Decoder().decodePaymentRequired(headerValue: challenge.render().paymentRequiredHeader)
        #expect(decoded.accepts.first?.amount == atomic)
        let root = try F.object(try #require(Data(base64Encoded: challenge.render().paymentRequiredHeader)))
        #expect((root["accepts"] as? [[String: Any]])?.first?["amount"] as? String == String(atomic))
    }

    @Test func largestAmountStaysExact() throws {
        let challenge = try X402Challenge(
            settings: F.settings(), price: Money(atomicUnits: .max), resource: F.resource, error: "e"
        )
        let body = String(decoding: try challenge.render().body, as: UTF8.self)
        #expect(body.contains(#""maxAmountRequired":"18446744073709551615""#))
        let decoded = try X402Decoder().decodePaymentRequiredV1(body: try challenge.render().body)
        #expect(decoded.accepts.first?.maxAmountRequired == .max)
    }

    @Test func base64RoundTripsBothVersions() throws {
        let challenge = try F.challenge()
        let rendered = try challenge.render()
        let decoder = X402Decoder()
        #expect(try decoder.decodePaymentRequired(headerValue: rendered.paymentRequiredHeader) == challenge.paymentRequired)
        #expect(try decoder.decodePaymentRequiredV1(body: rendered.body) == challenge.paymentRequiredV1)
    }

    @Test func renderingIsDeterministic() throws {
        let first = try F.challenge().render()
        for _ in 0..<20 { #expect(try F.challenge().render() == first) }
    }

    @Test func responseHeaders() throws {
        let rendered = try F.challenge().render()
        let headers = Dictionary(uniqueKeysWithValues: rendered.headers.map { ($0.name, $0.value) })
        #expect(headers == [
            "PAYMENT-REQUIRED": rendered.paymentRequiredHeader,
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
        ])
        #expect(X402RenderedChallenge.status == 402)
    }

    @Test func tokenDomainComesFromSettings() throws {
        var settings = F.settings(network: "base", maxTimeoutSeconds: 300)
        settings.extraName = "USD Coin"
        let challenge = try X402Challenge(settings: settings, price: Money(atomicUnits: 5), resource: F.resource, error: "e")
        let requirement = try #require(challenge.paymentRequired.accepts.first)
        #expect(requirement.network.caip2 == "eip155:8453")
        #expect(requirement.extra == ["name": .string("USD Coin"), "version": .string("2")])
        #expect(requirement.maxTimeoutSeconds == 300)
        let root = try F.object(try challenge.render().body)
        #expect((root["accepts"] as? [[String: Any]])?.first?["network"] as? String == "base")
    }

    @Test func networkWithoutV1NameGivesV1ClientsNothingToPay() throws {
        let challenge = try F.challenge(network: "eip155:424242")
        #expect(challenge.paymentRequired.accepts.count == 1)
        #expect(challenge.paymentRequiredV1.accepts.isEmpty)
        #expect(String(decoding: try challenge.render().body, as: UTF8.self)
            == #"{"accepts":[],"error":"payment_required","x402Version":1}"#)
    }

    @Test func withErrorReplacesTheReasonInBothVersions() throws {
        let refused = try F.challenge().withError("invalid_exact_evm_payload_signature")
        #expect(refused.paymentRequired.error == "invalid_exact_evm_payload_signature")
        #expect(refused.paymentRequiredV1.error == "invalid_exact_evm_payload_signature")
        #expect(refused.paymentRequired.accepts == (try F.challenge()).paymentRequired.accepts)
    }

    @Test func descriptionAndMimeTypeAreOptionalInV2Only() throws {
        let challenge = try X402Challenge(
            settings: F.settings(), price: Money(atomicUnits: 1), resource: X402ResourceInfo(url: "https://x.test/a"), error: "e"
        )
        let v2 = try F.object(try #require(Data(base64Encoded: challenge.render().paymentRequiredHeader)))
        #expect(v2["resource"] as? [String: String] == ["url": "https://x.test/a"])
        let v1 = try #require((try F.object(try challenge.render().body)["accepts"] as? [[String: Any]])?.first)
        #expect(v1["description"] as? String == "")
        #expect(v1["mimeType"] as? String == "")
    }

    @Test func refusesConfigurationMistakes() throws {
        func refusal(_ make: () throws(X402Error) -> X402Challenge) -> X402Error.Code? {
            do { _ = try make(); return nil } catch { return error.code }
        }
        #expect(refusal { () throws(X402Error) in
            try X402Challenge(settings: F.settings(), price: .zero(), resource: F.resource, error: "e")
        } == .invalidChallenge)
        #expect(refusal { () throws(X402Error) in
            try X402Challenge(settings: F.settings(), price: Money(atomicUnits: 1, asset: "0x0000000000000000000000000000000000000001"),
                              resource: F.resource, error: "e")
        } == .invalidChallenge)
        #expect(refusal { () throws(X402Error) in
            try X402Challenge(settings: F.settings(), price: Money(atomicUnits: 1), resource: X402ResourceInfo(url: ""), error: "e")
        } == .invalidChallenge)
        var noDomain = F.settings()
        noDomain.extraName = ""
        #expect(refusal { () throws(X402Error) in
            try X402Challenge(settings: noDomain, price: Money(atomicUnits: 1), resource: F.resource, error: "e")
        } == .invalidChallenge)
        // The configured asset, spelled in another case, is the same asset.
        #expect(refusal { () throws(X402Error) in
            try X402Challenge(settings: F.settings(), price: Money(atomicUnits: 1, asset: F.asset.lowercased()),
                              resource: F.resource, error: "e")
        } == nil)
    }
}
