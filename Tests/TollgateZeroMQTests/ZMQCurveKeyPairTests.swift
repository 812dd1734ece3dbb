import Testing
import TollgateZeroMQ

@Suite("Z85 and CURVE keys")
struct ZMQCurveKeyPairTests {
    @Test("Z85 matches the RFC 32 test vector and round-trips")
    func z85Vector() throws {
        let bytes: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        #expect(try Z85.encode(bytes) == "HelloWorld")
        #expect(try Z85.decode("HelloWorld") == bytes)
        #expect(try Z85.encode([]) == "")
        let all = Array(0 ... 255).map(UInt8.init)
        #expect(try Z85.decode(Z85.encode(all)) == all)
    }

    @Test("Z85 rejects bad lengths and characters with EINVAL")
    func z85Invalid() throws {
        #expect(throws: ZMQError.self) { try Z85.encode([1, 2, 3]) }
        let wrongLength = try #require(throws: ZMQError.self) { try Z85.decode("HelloWorl") }
        #expect(wrongLength.code == .einval)
        let badCharacter = try #require(throws: ZMQError.self) { try Z85.decode("Hello Wor\"") }
        #expect(badCharacter.code == .einval)
    }

    @Test("generated key pairs are 32 bytes, 40 Z85 characters, and distinct")
    func generate() throws {
        let first = try ZMQCurveKeyPair.generate()
        let second = try ZMQCurveKeyPair.generate()
        #expect(first.publicKey.bytes.count == 32)
        #expect(first.secretKey.bytes.count == 32)
        #expect(first.publicKey.z85.count == 40)
        #expect(try ZMQCurveKey(z85: first.publicKey.z85) == first.publicKey)
        #expect(first != second)
    }

    @Test("a key must be 32 bytes")
    func keyLength() {
        #expect(throws: ZMQError.self) { try ZMQCurveKey(bytes: [1, 2, 3]) }
        #expect(throws: ZMQError.self) { try ZMQCurveKey(z85: "HelloWorld") }
    }
}
