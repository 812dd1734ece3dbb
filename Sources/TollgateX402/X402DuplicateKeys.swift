/// Refuses JSON in which one object names the same key twice.
///
/// Parsers disagree on duplicates: Foundation's `JSONDecoder` keeps the first, Python's and
/// JavaScript's keep the last. A payment read one way here and another way by a facilitator is a
/// way to smuggle a different amount or recipient past the server's checks, so duplicates are
/// refused outright. This is not a validator: malformed JSON is left for `JSONDecoder` to report.
///
/// Threading: stateless.
enum X402DuplicateKeys {
    private enum Frame {
        case object(keys: Set<String>, expectingKey: Bool)
        case array
    }

    /// The first duplicated key, or nil. Keys are compared after unescaping, so `"a"` and
    /// `"\u0061"` are the same key.
    static func firstDuplicate(in json: some Collection<UInt8>) -> String? {
        var stack: [Frame] = []
        var index = json.startIndex
        while index != json.endIndex {
            let byte = json[index]
            json.formIndex(after: &index)
            switch byte {
            case UInt8(ascii: "{"):
                stack.append(.object(keys: [], expectingKey: true))
            case UInt8(ascii: "["):
                stack.append(.array)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard stack.popLast() != nil else { return nil }
            case UInt8(ascii: ","):
                if case .object(let keys, _) = stack.last { stack[stack.count - 1] = .object(keys: keys, expectingKey: true) }
            case UInt8(ascii: "\""):
                guard let text = readString(json, from: &index) else { return nil }
                if case .object(var keys, true) = stack.last {
                    guard keys.insert(text).inserted else { return text }
                    stack[stack.count - 1] = .object(keys: keys, expectingKey: false)
                }
            default:
                continue  // whitespace, ':', numbers and literals carry no keys
            }
        }
        return nil
    }

    /// Reads a string body after its opening quote, unescaping it; nil when it is unterminated or
    /// an escape is malformed (the decoder then reports the syntax error).
    private static func readString<C: Collection<UInt8>>(_ json: C, from index: inout C.Index) -> String? {
        var utf8: [UInt8] = []
        var utf16: [UInt16] = []  // pending \u escapes, so surrogate pairs join up
        func flush() {
            if !utf16.isEmpty {
                utf8.append(contentsOf: String(decoding: utf16, as: UTF16.self).utf8)
                utf16.removeAll()
            }
        }
        while index != json.endIndex {
            let byte = json[index]
            json.formIndex(after: &index)
            if byte == UInt8(ascii: "\"") {
                flush()
                return String(decoding: utf8, as: UTF8.self)
            }
            guard byte == UInt8(ascii: "\\") else {
                flush()
                utf8.append(byte)
                continue
            }
            guard index != json.endIndex else { return nil }
            let escape = json[index]
            json.formIndex(after: &index)
            switch escape {
            case UInt8(ascii: "u"):
                var unit: UInt16 = 0
                for _ in 0..<4 {
                    guard index != json.endIndex, let digit = hexValue(json[index]) else { return nil }
                    unit = unit << 4 | UInt16(digit)
                    json.formIndex(after: &index)
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
