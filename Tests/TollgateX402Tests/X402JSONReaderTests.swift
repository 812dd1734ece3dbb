import Foundation
import Testing
@testable import TollgateX402

/// A payment's `extensions` are read from the bytes (`X402JSONReader`), not through `Decodable`:
/// the two must agree on every value, and bad input must be refused, never trap.
@Suite struct X402JSONReaderTests {
    typealias F = X402TestFixtures
    let decoder = X402Decoder()

    /// `extensions` as `Decodable` reads them (the path the reader replaced for payments).
    func throughDecodable(_ json: Data) throws -> [String: X402JSONValue]? {
        struct Root: Decodable { var extensions: [String: X402JSONValue]? }
        return try JSONDecoder().decode(Root.self, from: json).extensions
    }

    @Test(arguments: [
        #"{"payment-identifier":{"info":{"required":false,"id":"pay_0123456789abcdef"},"schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","properties":{"id":{"maxLength":128,"minLength":16,"pattern":"^[a-zA-Z0-9_-]+$","type":"string"},"required":{"type":"boolean"}},"required":["required"],"type":"object"}}}"#,
        #"{"n":[-1,0,9223372036854775807,-9223372036854775808,9223372036854775808,1.5,-2e3,1E-2,0.0],"b":[true,false,null],"e":[],"o":{}}"#,
        #"{ "s" : "tab\there \"quoted\" back\\slash \/ \u00e9 \ud83d\ude00 \u0000" , "nested" : [ [ [ {"k": "v"} ] ] ] }"#,
        #"{"unicode-kéy":"ünïcödé","":""}"#,
    ])
    func agreesWithDecodable(_ extensions: String) throws {
        let json = Data((#"{"x402Version":2,"extensions":"# + extensions + "}").utf8)
        let read = try X402JSONReader.member("extensions", of: json).get()
        let decoded = try throughDecodable(json)
        guard case .object(let members)? = read else {
            Issue.record("extensions were not read as an object: \(String(describing: read))")
            return
        }
        #expect(members == decoded)
    }

    @Test func aPaymentsExtensionsComeFromTheBytes() throws {
        let json = try F.paymentJSON(root: ["extensions": ["x": ["list": [["a": 1], ["a": 2.5]], "flag": true] as [String: Any]]])
        let payment = try decoder.decodePaymentSignature(headerValue: F.base64(json))
        #expect(payment.extensions == (try throughDecodable(Data(json.utf8))))
        #expect(payment.extensions?["x"]?["flag"] == .bool(true))
    }

    @Test func extensionsThatAreNotAnObjectAreRefused() throws {
        for value in ["5", "\"text\"", "[1]", "true"] {
            let base = try F.paymentJSON()
            let json = String(base.dropLast()) + #","extensions":"# + value + "}"
            #expect(throws: X402Error.self) { try decoder.decodePaymentSignature(headerValue: F.base64(json)) }
        }
        // null is the same as absent
        let json = try F.paymentJSON(root: ["extensions": NSNull()])
        #expect(try decoder.decodePaymentSignature(headerValue: F.base64(json)).extensions == nil)
    }

    @Test func deepNestingIsRefusedNotCrashed() throws {
        let depth = X402JSONReader.maxDepth + 10
        let deep = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let json = Data((#"{"extensions":{"deep":"# + deep + "}}").utf8)
        #expect(throws: X402Error.self) { try X402JSONReader.member("extensions", of: json).get() }
        let shallow = String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
        #expect(try X402JSONReader.member("extensions", of: Data((#"{"extensions":{"ok":"# + shallow + "}}").utf8)).get() != nil)
    }

    @Test(arguments: [#"{"extensions":"#, #"{"extensions":{"a":}"#, #"{"extensions":{"a":tru}}"#, #"{"extensions":{"a" 1}}"#,
                      #"{"extensions":["#, #"{"extensions":{"a":"unterminated}}"#, #"{"extensions":{"a":"\u12"}}"#])
    func malformedBytesAreRefused(_ text: String) {
        #expect(throws: X402Error.self) { try X402JSONReader.member("extensions", of: Data(text.utf8)).get() }
    }
}
