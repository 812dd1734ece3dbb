import Testing
import TollgateX402

/// The payment-identifier extension read from decoded payments: ids, echoes without one, and junk.
@Suite struct X402PaymentIdentifierTests {
    typealias P = X402PaymentIdentifier

    @Test func readsAWellFormedID() {
        let id = "pay_7d5d747be160e280504c099d984bcfe0"
        let ext: [String: X402JSONValue] = ["payment-identifier": .object(["info": .object(["required": .bool(false), "id": .string(id)])])]
        #expect(P.extract(ext) == .id(id))
    }

    @Test func anEchoedDeclarationOrNoExtensionHasNoID() {
        #expect(P.extract(nil) == .absent)
        #expect(P.extract(["other": .null]) == .absent)
        #expect(P.extract([P.extensionName: P.declaration]) == .absent)
        #expect(P.extract([P.extensionName: .object(["info": .object(["required": .bool(false), "id": .null])])]) == .absent)
    }

    @Test(arguments: [
        X402JSONValue.string("x"), .array([]), .integer(3),
        .object(["info": .string("id")]),
        .object(["info": .object(["id": .integer(1234567890123456)])]),
        .object(["info": .object(["id": .string("short")])]),
        .object(["info": .object(["id": .string(String(repeating: "a", count: 129))])]),
        .object(["info": .object(["id": .string("pay with spaces in it ok")])]),
        .object(["info": .object(["id": .string("tg:{other}:pid:abcdefgh")])]),
        .object(["info": .object(["id": .string("ünïcödé_payment_identifier")])]),
    ])
    func junkIsInvalidNeverAnID(_ value: X402JSONValue) {
        guard case .invalid = P.extract([P.extensionName: value]) else {
            Issue.record("\(value) was not refused")
            return
        }
    }

    @Test func boundsAreTheSpecifications() {
        #expect(P.isValid(String(repeating: "a", count: 16)) && P.isValid(String(repeating: "Z", count: 128)))
        #expect(!P.isValid(String(repeating: "a", count: 15)) && !P.isValid(String(repeating: "a", count: 129)))
        #expect(P.isValid("A-z_0-9-A-z_0-9-"))
    }
}
