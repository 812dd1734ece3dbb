/// An API key id as the sidecar's per-key tables hold it: the 32 bytes of a lowercase hex SHA-256
/// digest inline, with no heap string, or any other text as it came.
///
/// Key ids are the hex SHA-256 of the key (`APIKeyHasher`), 64 characters: as a `String` that is a
/// 112-byte heap block per key and per table, and a 64-byte hash on every lookup. As four words it
/// is neither, and hashing it is a few multiplications.
/// Anything else (test ids, a malformed id from the network) keeps its text and is still exact.
///
/// Threading: a value; `Sendable`.
struct CompactKeyID: Hashable, Sendable {
    private enum Storage: Hashable, Sendable {
        case digest(UInt64, UInt64, UInt64, UInt64)
        case text(String)
    }

    private let storage: Storage

    /// The id of `keyID`: its digest when it is 64 lowercase hex digits, else its text.
    init(_ keyID: String) {
        var keyID = keyID
        let parsed: Storage? = keyID.withUTF8 { bytes in
            guard bytes.count == 64 else { return nil }
            var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            var ok = true
            func word(_ at: Int) -> UInt64 {
                var value: UInt64 = 0
                for offset in at..<(at + 16) {
                    let byte = bytes[offset]
                    let digit: UInt8
                    if byte &- 48 < 10 {
                        digit = byte &- 48
                    } else if byte &- 97 < 6 {
                        digit = byte &- 87
                    } else {
                        ok = false
                        digit = 0
                    }
                    value = value << 4 | UInt64(digit)
                }
                return value
            }
            words = (word(0), word(16), word(32), word(48))
            return ok ? .digest(words.0, words.1, words.2, words.3) : nil
        }
        self.storage = parsed ?? .text(keyID)
    }

    /// The id as text, exactly as it was given.
    var string: String {
        switch storage {
        case .text(let text):
            return text
        case .digest(let a, let b, let c, let d):
            let digits: [UInt8] = Array("0123456789abcdef".utf8)
            return String(unsafeUninitializedCapacity: 64) { out in
                var index = 0
                for word in [a, b, c, d] {
                    for shift in stride(from: 60, through: 0, by: -4) {
                        out[index] = digits[Int((word >> UInt64(shift)) & 0xF)]
                        index += 1
                    }
                }
                return 64
            }
        }
    }

    /// 64 bits for the table: a digest's words folded together (all of them, so ids that share a
    /// prefix still spread), or the text's hash.
    var tableHash: UInt64 {
        switch storage {
        case .digest(let a, let b, let c, let d): (a &* 0x9E37_79B9_7F4A_7C15) ^ (b &* 0xC2B2_AE3D_27D4_EB4F) ^ (c &* 0x1656_67B1_9E37_79F9) ^ d
        case .text(let text): UInt64(bitPattern: Int64(text.hashValue))
        }
    }
}
