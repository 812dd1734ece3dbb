import Foundation

/// Refuses JSON in which one object names the same key twice.
///
/// Parsers disagree on duplicates: Foundation's `JSONDecoder` keeps the first, Python's and
/// JavaScript's keep the last. A payment read one way here and another way by a facilitator is a
/// way to smuggle a different amount or recipient past the server's checks, so duplicates are
/// refused outright. This is not a validator: malformed JSON is left for `JSONDecoder` to report.
///
/// It runs on every payment a collector decodes, so it reads raw bytes and makes a `String` only
/// of object keys; values (the signature, the nonce) are skipped over, not copied.
///
/// Threading: stateless.
enum X402DuplicateKeys {
    /// The first duplicated key, or nil. Keys are compared after unescaping, so `"a"` and
    /// `"\u0061"` are the same key.
    static func firstDuplicate(in json: Data) -> String? {
        json.withUnsafeBytes { raw in firstDuplicate(in: raw.bindMemory(to: UInt8.self)) }
    }

    private static func firstDuplicate(in json: UnsafeBufferPointer<UInt8>) -> String? {
        // One entry per open object or array: the keys seen so far (nil for an array), and
        // whether the next string in it is a key. Sets are changed in place, never copied.
        var keys: [Set<String>?] = []
        var expectingKey: [Bool] = []
        var index = 0
        while index < json.count {
            let byte = json[index]
            index += 1
            switch byte {
            case UInt8(ascii: "{"):
                keys.append([])
                expectingKey.append(true)
            case UInt8(ascii: "["):
                keys.append(nil)
                expectingKey.append(false)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard keys.popLast() != nil else { return nil }
                expectingKey.removeLast()
            case UInt8(ascii: ","):
                if let top = keys.indices.last, keys[top] != nil { expectingKey[top] = true }
            case UInt8(ascii: "\""):
                let top = keys.count - 1
                guard top >= 0, keys[top] != nil, expectingKey[top] else {
                    guard skipString(json, from: &index) else { return nil }
                    continue
                }
                guard let text = readString(json, from: &index) else { return nil }
                guard keys[top]!.insert(text).inserted else { return text }
                expectingKey[top] = false
            default:
                continue  // whitespace, ':', numbers and literals carry no keys
            }
        }
        return nil
    }

    /// Moves past a string body after its opening quote without reading it; false when it is
    /// unterminated.
    private static func skipString(_ json: UnsafeBufferPointer<UInt8>, from index: inout Int) -> Bool {
        while index < json.count {
            let byte = json[index]
            index += 1
            if byte == UInt8(ascii: "\"") { return true }
            if byte == UInt8(ascii: "\\") { index += 1 }
        }
        return false
    }

    /// Reads a string body after its opening quote, unescaping it; nil when it is unterminated or
    /// an escape is malformed (the decoder then reports the syntax error).
    static func readString(_ json: UnsafeBufferPointer<UInt8>, from index: inout Int) -> String? {
        // The common case, a key without escapes, is one copy of its bytes.
        let start = index
        while index < json.count, json[index] != UInt8(ascii: "\""), json[index] != UInt8(ascii: "\\") {
            index += 1
        }
        guard index < json.count else { return nil }
        var utf8 = Array(json[start..<index])
        var utf16: [UInt16] = []  // pending \u escapes, so surrogate pairs join up
        func flush() {
            if !utf16.isEmpty {
                utf8.append(contentsOf: String(decoding: utf16, as: UTF16.self).utf8)
                utf16.removeAll()
            }
        }
        while index < json.count {
            let byte = json[index]
            index += 1
            if byte == UInt8(ascii: "\"") {
                flush()
                return String(decoding: utf8, as: UTF8.self)
            }
            guard byte == UInt8(ascii: "\\") else {
                flush()
                utf8.append(byte)
                continue
            }
            guard index < json.count else { return nil }
            let escape = json[index]
            index += 1
            switch escape {
            case UInt8(ascii: "u"):
                var unit: UInt16 = 0
                for _ in 0..<4 {
                    guard index < json.count, let digit = hexValue(json[index]) else { return nil }
                    unit = unit << 4 | UInt16(digit)
                    index += 1
                }
                utf16.append(unit)
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"):
                flush()
                utf8.append(escape)
            case UInt8(ascii: "b"): flush(); utf8.append(0x08)
            case UInt8(ascii: "f"): flush(); utf8.append(0x0C)
            case UInt8(ascii: "n"): flush(); utf8.append(0x0A)
            case UInt8(ascii: "r"): flush(); utf8.append(0x0D)
            case UInt8(ascii: "t"): flush(); utf8.append(0x09)
            default: return nil
            }
        }
        return nil
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
