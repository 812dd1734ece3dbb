import Foundation
import Testing
import TollgateX402

@Suite struct X402DecoderTests {
    typealias F = X402TestFixtures
    let decoder = X402Decoder()

    func refusal(_ headerValue: String, v1: Bool = false) -> X402Error? {
        do {
            if v1 { _ = try decoder.decodeXPayment(headerValue: headerValue) }
            else { _ = try decoder.decodePaymentSignature(headerValue: headerValue) }
            return nil
        } catch {
            return error
        }
    }

    func refusal(json: String, v1: Bool = false) -> X402Error? { refusal(F.base64(json), v1: v1) }

    @Test func decodesAV2Payment() throws {
        let payment = try decoder.decodePaymentSignature(headerValue: F.base64(try F.paymentJSON()))
        #expect(payment.accepted == (try F.challenge()).paymentRequired.accepts[0])
        #expect(payment.accepted.amount == 10_000)
        #expect(payment.resource?.url == F.resource.url)
        let authorization = payment.payload.authorization
        #expect(authorization.from.text == F.payer)
        #expect(authorization.to.matches(F.payTo))
        #expect(authorization.value == 10_000)
        #expect(authorization.validAfter == 0)
        #expect(authorization.validBefore == 1_763_900_060)
        #expect(authorization.nonce == F.nonce)
        #expect(payment.payload.signature == F.signature)
        #expect(payment.extensions == nil)
    }

    @Test func decodesAV1Payment() throws {
        let json = try F.paymentJSON(root: ["x402Version": 1, "scheme": "exact", "network": "base-sepolia", "accepted": nil, "resource": nil])
        let payment = try decoder.decodeXPayment(headerValue: F.base64(json))
        #expect(payment.network.caip2 == "eip155:84532")
        #expect(payment.scheme == "exact")
        #expect(payment.payload.authorization.value == 10_000)
    }

    @Test func keepsExtensions() throws {
        let json = try F.paymentJSON(root: ["extensions": ["payment-identifier": ["info": ["id": "pay_7", "n": 3, "f": 0.5, "ok": true, "none": NSNull()] as [String: Any]]]])
        let payment = try decoder.decodePaymentSignature(headerValue: F.base64(json))
        let info = payment.extensions?["payment-identifier"]?["info"]
        #expect(info?["id"]?.stringValue == "pay_7")
        #expect(info?["n"] == .integer(3))
        #expect(info?["f"] == .number(0.5))
        #expect(info?["ok"] == .bool(true))
        #expect(info?["none"] == .null)
    }

    @Test func reEncodingAPaymentDecodesToTheSameValue() throws {
        let payment = try decoder.decodePaymentSignature(headerValue: F.base64(try F.paymentJSON(root: ["extensions": ["a": [1, "b"] as [Any]]])))
        let again = try decoder.decodePaymentSignature(headerValue: try JSONEncoder().encode(payment).base64EncodedString())
        #expect(again == payment)
    }

    @Test func toleratesSurroundingWhitespaceOnly() throws {
        let value = F.base64(try F.paymentJSON())
        #expect(refusal(" \t" + value + " ") == nil)
        let middle = value.index(value.startIndex, offsetBy: 8)
        #expect(refusal(String(value[..<middle]) + " " + String(value[middle...]))?.code == .invalidBase64)
        #expect(refusal(String(value[..<middle]) + "\r\n" + String(value[middle...]))?.code == .invalidBase64)
    }

    @Test(arguments: ["", "   ", "!!!!", "abc", "eyJ4NDAyVmVyc2lvbiI6Mn0", "eyJ4NDAy=mVyc2lvbiI6Mn0=", "e===", "eyJ4-DAy_mVyc2lvbiI6Mn0=", "ZQ==ZQ=="])
    func refusesGarbageBase64(value: String) {
        #expect(refusal(value)?.code == .invalidBase64)
    }

    @Test(arguments: ["not json", "[1,2]", "\"x402\"", "{", "{\"x402Version\":2", "{}{}", "\u{FEFF}{}"])
    func refusesBadJSON(json: String) {
        let code = refusal(json: json)?.code
        #expect(code == .invalidJSON || code == .unsupportedVersion, "\(json): \(String(describing: code))")
    }

    @Test func refusesBytesThatAreNotUTF8() {
        let value = Data([0x7B, 0xFF, 0xFE, 0x7D]).base64EncodedString()
        #expect(refusal(value)?.code == .invalidJSON)
    }

    @Test func refusesTheWrongVersion() throws {
        #expect(refusal(json: try F.paymentJSON(root: ["x402Version": 1]))?.code == .unsupportedVersion)
        #expect(refusal(json: try F.paymentJSON(root: ["x402Version": 3]))?.code == .unsupportedVersion)
        #expect(refusal(json: try F.paymentJSON(root: ["x402Version": "2"]))?.code == .unsupportedVersion)
        #expect(refusal(json: try F.paymentJSON(root: ["x402Version": nil]))?.code == .unsupportedVersion)
        // A v2 payment sent as X-PAYMENT is a version error, not a missing field.
        #expect(refusal(json: try F.paymentJSON(), v1: true)?.code == .unsupportedVersion)
        let header = try F.challenge().render().paymentRequiredHeader
        #expect(throws: X402Error(.unsupportedVersion, "x402Version is 2, expected 1")) {
            try decoder.decodeXPayment(headerValue: header)
        }
    }

    @Test func refusesOversizedInputBeforeDecoding() throws {
        let small = X402Decoder(maxHeaderBytes: 64, maxBodyBytes: 64)
        #expect(throws: X402Error.self) { try small.decodePaymentSignature(headerValue: String(repeating: "A", count: 65)) }
        do {
            _ = try small.decodePaymentSignature(headerValue: String(repeating: "!", count: 65))
        } catch {
            #expect(error.code == .oversized)
        }
        let padded = F.base64(try F.paymentJSON(root: ["extensions": ["pad": String(repeating: "x", count: 9_000)]]))
        #expect(refusal(padded)?.code == .oversized)
        let body = try F.challenge().render().body
        #expect(throws: X402Error.self) { try small.decodePaymentRequiredV1(body: body) }
        #expect((try? X402Decoder(maxBodyBytes: body.count).decodePaymentRequiredV1(body: body)) != nil)
    }

    @Test func refusesEveryTruncation() throws {
        let json = Array(try F.paymentJSON().utf8)
        for length in 0..<json.count {
            let value = Data(json[..<length]).base64EncodedString()
            #expect(refusal(value) != nil, "prefix of \(length) bytes was accepted")
        }
    }

    /// Thousands of single- and multi-byte corruptions, before and after base64: each is refused with
    /// an `X402Error` or, when it happens to stay valid, decodes; none crashes.
    @Test func survivesCorruptedInput() throws {
        let json = Array(try F.paymentJSON().utf8)
        let header = Array(F.base64(String(decoding: json, as: UTF8.self)).utf8)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let interesting: [UInt8] = Array(#"{}[]",:\0123456789eE+-.tfn"#.utf8) + [0x00, 0x80, 0xFF]
        var accepted = 0
        for round in 0..<3_000 {
            var bytes = round % 2 == 0 ? json : header
            for _ in 0...next(3) {
                let at = next(bytes.count)
                switch next(3) {
                case 0: bytes[at] = interesting[next(interesting.count)]
                case 1: bytes.remove(at: at)
                default: bytes.insert(bytes[next(bytes.count)], at: at)
                }
            }
            let value = round % 2 == 0 ? Data(bytes).base64EncodedString() : String(decoding: bytes, as: UTF8.self)
            if (try? decoder.decodePaymentSignature(headerValue: value)) != nil { accepted += 1 }
        }
        #expect(accepted < 3_000)
    }

    @Test func refusesConcatenatedPayments() throws {
        let json = try F.paymentJSON()
        #expect(refusal(json: json + json)?.code == .invalidJSON)
        #expect(refusal(F.base64(json) + F.base64(json))?.code == .invalidBase64)
    }

    @Test(arguments: [
        ("amount", X402JSONValue.integer(10_000), X402Error.Code.invalidJSON),
        ("amount", .string("10000.0"), .invalidField),
        ("amount", .string("-1"), .invalidField),
        ("amount", .string("0010000"), .invalidField),
        ("amount", .string("1e4"), .invalidField),
        ("amount", .string("18446744073709551616"), .invalidField),
        ("amount", .string(""), .invalidField),
        ("amount", nil, .invalidJSON),
        ("payTo", .string("0x1234"), .invalidField),
        ("asset", .string("036CbD53842c5426634e7929541eC2318f3dCF7e00"), .invalidField),
        ("network", .string("base-sepolia"), .unsupportedNetwork),
        ("network", .string("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"), .unsupportedNetwork),
        ("scheme", .string("upto"), .unsupportedScheme),
        ("maxTimeoutSeconds", .integer(0), .invalidField),
        ("maxTimeoutSeconds", .string("60"), .invalidJSON),
        ("extra", .string("USDC"), .invalidJSON),
    ] as [(String, X402JSONValue?, X402Error.Code)])
    func refusesMalformedAcceptedFields(key: String, value: X402JSONValue?, code: X402Error.Code) throws {
        let error = refusal(json: try F.paymentJSON(accepted: [key: value.map(F.jsonObject)]))
        #expect(error?.code == code)
        #expect(error?.message.hasPrefix("accepted.") == true, "\(String(describing: error))")
    }

    @Test(arguments: [
        ("nonce", "0x1234"),
        ("nonce", "0x" + String(repeating: "g", count: 64)),
        ("value", "ten"),
        ("validBefore", "+60"),
        ("from", "0xnothex0000000000000000000000000000000000"),
        ("to", nil),
    ] as [(String, String?)])
    func refusesMalformedAuthorizations(key: String, value: String?) throws {
        let error = refusal(json: try F.paymentJSON(authorization: [key: value]))
        #expect(error?.code == .invalidField || error?.code == .invalidJSON)
        #expect(error?.message.hasPrefix("payload.authorization.\(key)") == true, "\(String(describing: error))")
    }

    @Test(arguments: ["0x1234", "abab", "0x" + String(repeating: "ab", count: 64), "0x" + String(repeating: "a", count: 131), "0x" + String(repeating: "zz", count: 65)])
    func refusesMalformedSignatures(signature: String) throws {
        let error = refusal(json: try F.paymentJSON(payload: ["signature": signature]))
        #expect(error?.code == .invalidField)
        #expect(error?.message.hasPrefix("payload.signature") == true)
    }

    @Test func acceptsSmartWalletLengthSignatures() throws {
        let long = "0x" + String(repeating: "cd", count: 300)
        #expect(refusal(json: try F.paymentJSON(payload: ["signature": long])) == nil)
    }

    @Test func refusesAPermit2OrOtherwiseShapedPayload() throws {
        #expect(refusal(json: try F.paymentJSON(payload: ["authorization": nil, "permit2Authorization": ["from": F.payer]]))?.code == .invalidJSON)
        #expect(refusal(json: try F.paymentJSON(root: ["payload": "0xabc"]))?.code == .invalidJSON)
        #expect(refusal(json: try F.paymentJSON(root: ["resource": ["url": ""]]))?.code == .invalidField)
    }

    @Test func v1RefusesCAIP2NetworksAndOtherSchemes() throws {
        func v1(_ edit: [String: Any?]) throws -> String {
            var root: [String: Any?] = ["x402Version": 1, "scheme": "exact", "network": "base-sepolia", "accepted": nil, "resource": nil]
            for (key, value) in edit { root[key] = value }
            return try F.paymentJSON(root: root)
        }
        #expect(refusal(json: try v1([:]), v1: true) == nil)
        #expect(refusal(json: try v1(["network": "eip155:84532"]), v1: true)?.code == .unsupportedNetwork)
        #expect(refusal(json: try v1(["scheme": "upto"]), v1: true)?.code == .unsupportedScheme)
        #expect(refusal(json: try v1(["network": nil]), v1: true)?.code == .invalidJSON)
    }

    /// Foundation keeps the first of two equal keys, Python and JavaScript the last: a payment must
    /// not read one way here and another at the facilitator.
    @Test(arguments: [
        (#""amount":"10000""#, #""amount":"1","amount":"10000""#),
        (#""amount":"10000""#, #""amount":"10000","amo\u0075nt":"1""#),
        (#""value":"10000""#, #""value":"10000","value":"1""#),
        (#""x402Version":2"#, #""x402Version":2,"x402Version":1"#),
    ])
    func refusesDuplicateKeys(original: String, duplicated: String) throws {
        let json = try F.paymentJSON()
        #expect(json.contains(original))
        let error = refusal(json: json.replacingOccurrences(of: original, with: duplicated))
        #expect(error?.code == .invalidJSON)
        #expect(error?.message.contains("appears twice") == true, "\(String(describing: error))")
    }

    @Test func equalKeysInDifferentObjectsAndKeyLikeValuesAreFine() throws {
        // `to`, `value`, `name` and `version` recur across objects; a value may look like a key.
        let json = try F.paymentJSON(root: ["extensions": ["x": ["amount": "amount", "list": [["a": 1], ["a": 2]]] as [String: Any]]])
        #expect(refusal(json: json) == nil)
        #expect(refusal(json: #"{"x402Version":2,"s":"\"amount\":\"x402Version\"","x402Version":2}"#)?.message.contains("appears twice") == true)
    }

    @Test func errorsMapToX402Reasons() {
        #expect(X402Error(.unsupportedVersion, "").x402Reason == "invalid_x402_version")
        #expect(X402Error(.unsupportedNetwork, "").x402Reason == "invalid_network")
        #expect(X402Error(.unsupportedScheme, "").x402Reason == "unsupported_scheme")
        for code in [X402Error.Code.oversized, .invalidBase64, .invalidJSON, .invalidField] {
            #expect(X402Error(code, "").x402Reason == "invalid_payload")
        }
    }

    @Test func messagesNeverEchoTheSignature() throws {
        let secret = "0x" + String(repeating: "5e", count: 64) + "zz"
        let error = refusal(json: try F.paymentJSON(payload: ["signature": secret]))
        #expect(error.map { !$0.description.contains("5e5e") } == true)
    }

    @Test("the payment-identifier id is read from a header without decoding payments that cannot name it")
    func paymentIdentifierFromHeader() throws {
        let id = "pay_7d5d747be160e280504c099d984bcfe0"
        let withID = try F.paymentJSON(root: ["extensions": ["payment-identifier": ["info": ["required": false, "id": id]]]])
        #expect(decoder.paymentIdentifier(inPaymentSignature: F.base64(withID)) == .id(id))
        #expect(decoder.paymentIdentifier(inPaymentSignature: F.base64(try F.paymentJSON())) == .absent)
        // The key written with a JSON escape still names the extension: the fast path must not miss it.
        let escaped = withID.replacingOccurrences(of: "payment-identifier", with: "payment\\u002didentifier")
        #expect(escaped != withID)
        #expect(decoder.paymentIdentifier(inPaymentSignature: F.base64(escaped)) == .id(id))
        let junk = try F.paymentJSON(root: ["extensions": ["payment-identifier": ["info": ["id": 7]]]])
        if case .invalid = decoder.paymentIdentifier(inPaymentSignature: F.base64(junk)) {} else { Issue.record("expected .invalid") }
        #expect(decoder.paymentIdentifier(inPaymentSignature: "not base64!") == .absent)
    }
}
