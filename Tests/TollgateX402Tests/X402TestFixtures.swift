import Foundation
import TollgateCore
import TollgateX402

/// Settings and helpers shared by the x402 tests.
enum X402TestFixtures {
    static let asset = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    static let payTo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
    static let payer = "0x857b06519E91e3A54538791bDbb0E22373e36b66"
    static let nonce = "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"
    static let signature = "0x" + String(repeating: "ab", count: 65)

    /// Base Sepolia USDC, as the quickstart configures it.
    static func settings(network: String = "eip155:84532", maxTimeoutSeconds: Int = 60) -> X402Settings {
        X402Settings(
            network: X402Network(network)!, asset: EVMAddress(asset)!, payTo: EVMAddress(payTo)!,
            extraName: "USDC", extraVersion: "2", maxTimeoutSeconds: maxTimeoutSeconds,
            facilitatorURL: "http://127.0.0.1:9/facilitator"
        )
    }

    static let resource = X402ResourceInfo(
        url: "https://api.example.com/v1/search?q=tolls", description: "Suche über Daten", mimeType: "application/json"
    )

    /// A 0.01 USDC challenge for `resource`.
    static func challenge(network: String = "eip155:84532") throws -> X402Challenge {
        try X402Challenge(
            settings: settings(network: network), price: Money(decimal: "0.01", decimals: 6),
            resource: resource, error: X402Challenge.paymentRequiredReason
        )
    }

    /// `text` as a header value: standard base64 of its UTF-8 bytes.
    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// A JSON object parsed for field-by-field comparison.
    static func object(_ bytes: some Collection<UInt8>) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(bytes))
        guard let object = value as? [String: Any] else { throw FixtureError.notAnObject }
        return object
    }

    /// The directory of committed fixtures, beside this file.
    static var fixtureDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }

    /// A v2 payment (PAYMENT-SIGNATURE JSON) for the challenge above. Each override sets a key of
    /// its object, or removes it when the value is nil.
    static func paymentJSON(
        root: [String: Any?] = [:], accepted: [String: Any?] = [:], payload: [String: Any?] = [:],
        authorization: [String: Any?] = [:]
    ) throws -> String {
        func apply(_ overrides: [String: Any?], to object: inout [String: Any]) {
            for (key, value) in overrides { object[key] = value }
        }
        var acceptedObject: [String: Any] = [
            "scheme": "exact", "network": "eip155:84532", "amount": "10000", "asset": asset, "payTo": payTo,
            "maxTimeoutSeconds": 60, "extra": ["name": "USDC", "version": "2"],
        ]
        apply(accepted, to: &acceptedObject)
        var authorizationObject: [String: Any] = [
            "from": payer, "to": payTo, "value": "10000", "validAfter": "0", "validBefore": "1763900060", "nonce": nonce,
        ]
        apply(authorization, to: &authorizationObject)
        var payloadObject: [String: Any] = ["signature": signature, "authorization": authorizationObject]
        apply(payload, to: &payloadObject)
        var rootObject: [String: Any] = [
            "x402Version": 2,
            "resource": ["url": resource.url, "description": "Search", "mimeType": "application/json"],
            "accepted": acceptedObject,
            "payload": payloadObject,
        ]
        apply(root, to: &rootObject)
        let data = try JSONSerialization.data(withJSONObject: rootObject, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// `value` as a JSONSerialization object.
    static func jsonObject(_ value: X402JSONValue) -> Any {
        switch value {
        case .null: NSNull()
        case .bool(let flag): flag
        case .integer(let number): number
        case .number(let number): number
        case .string(let text): text
        case .array(let items): items.map(jsonObject)
        case .object(let members): members.mapValues(jsonObject)
        }
    }

    enum FixtureError: Error { case notAnObject }
}
