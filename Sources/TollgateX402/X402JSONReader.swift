import Foundation

/// Reads a JSON document into an ``X402JSONValue`` tree straight from its bytes.
///
/// For the open-ended `extensions` of a payment, which clients fill with whole JSON schemas:
/// through `Decodable`, every value there costs a thrown `DecodingError` per wrong guess at its
/// type, and that made up most of the time a collector spent decoding a payment. The document has
/// already passed `JSONDecoder` (and the duplicate-key check) when this runs, so it reads rather
/// than validates; it still returns nil, never traps, on anything malformed, and refuses nesting
/// deeper than ``maxDepth``.
///
/// Threading: stateless.
enum X402JSONReader {
    /// Deepest nesting read; deeper documents are refused.
    static let maxDepth = 64

    /// The top-level member `key` of the object `json`, nil when it is absent; throws when the
    /// document cannot be read.
    static func member(_ key: String, of json: Data) -> Result<X402JSONValue?, X402Error> {
        json.withUnsafeBytes { raw in
            var reader = Reader(bytes: raw.bindMemory(to: UInt8.self))
            guard let document = reader.value(depth: 0) else {
                return .failure(X402Error(.invalidJSON, "nested more than \(maxDepth) deep, or malformed"))
            }
            return .success(document[key])
        }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func value(depth: Int) -> X402JSONValue? {
            guard depth <= X402JSONReader.maxDepth, let byte = next() else { return nil }
            switch byte {
            case UInt8(ascii: "{"): return object(depth: depth)
            case UInt8(ascii: "["): return array(depth: depth)
            case UInt8(ascii: "\""): return X402DuplicateKeys.readString(bytes, from: &index).map(X402JSONValue.string)
            case UInt8(ascii: "t"): return literal("rue", .bool(true))
            case UInt8(ascii: "f"): return literal("alse", .bool(false))
            case UInt8(ascii: "n"): return literal("ull", .null)
            default:
                index -= 1
                return number()
            }
        }

        /// The next byte that is not whitespace, consumed.
        mutating func next() -> UInt8? {
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte != 0x20, byte != 0x0A, byte != 0x0D, byte != 0x09 { return byte }
            }
            return nil
        }

        mutating func object(depth: Int) -> X402JSONValue? {
            var members: [String: X402JSONValue] = [:]
            var first = true
            while true {
                guard var byte = next() else { return nil }
                if first, byte == UInt8(ascii: "}") { return .object(members) }
                if !first {
                    if byte == UInt8(ascii: "}") { return .object(members) }
                    guard byte == UInt8(ascii: ","), let following = next() else { return nil }
                    byte = following
                }
                first = false
                guard byte == UInt8(ascii: "\""), let key = X402DuplicateKeys.readString(bytes, from: &index),
                      next() == UInt8(ascii: ":"), let member = value(depth: depth + 1)
                else { return nil }
                members[key] = member
            }
        }

        mutating func array(depth: Int) -> X402JSONValue? {
            var elements: [X402JSONValue] = []
            var first = true
            while true {
                let mark = index
                guard let byte = next() else { return nil }
                if byte == UInt8(ascii: "]") { return .array(elements) }
                if first {
                    index = mark
                } else {
                    guard byte == UInt8(ascii: ",") else { return nil }
                }
                first = false
                guard let element = value(depth: depth + 1) else { return nil }
                elements.append(element)
            }
        }

        mutating func literal(_ rest: StaticString, _ value: X402JSONValue) -> X402JSONValue? {
            let count = rest.utf8CodeUnitCount
            guard index + count <= bytes.count else { return nil }
            for offset in 0..<count where bytes[index + offset] != rest.utf8Start[offset] { return nil }
            index += count
            return value
        }

        /// A number: an integer when it is a whole number within Int64 (`2e3` and `0.0` too, as
        /// `JSONDecoder` reads them); otherwise a Double.
        mutating func number() -> X402JSONValue? {
            let start = index
            var integral = true
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"): break
                case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): integral = false
                default:
                    return Self.number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self), integral: integral)
                }
                index += 1
            }
            return Self.number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self), integral: integral)
        }

        static func number(_ text: String, integral: Bool) -> X402JSONValue? {
            if integral, let value = Int64(text) { return .integer(value) }
            guard let value = Double(text), value.isFinite else { return nil }
            if value == value.rounded(), let whole = Int64(exactly: value) { return .integer(whole) }
            return .number(value)
        }
    }
}
