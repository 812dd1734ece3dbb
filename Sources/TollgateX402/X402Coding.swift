import Foundation

/// Shared JSON and field rules of the x402 wire types. Internal: callers see typed values only.
///
/// Threading: stateless; the encoders and decoders are made per call because neither
/// `JSONEncoder` nor `JSONDecoder` promises to be safe to share, and a challenge is encoded once
/// per route while a payment costs a facilitator round trip anyway.
enum X402Coding {
    /// Sorted keys make the bytes deterministic (a cached challenge never changes between builds);
    /// unescaped slashes keep URLs readable.
    static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `value` as JSON bytes; a failure here is a bug in the types, reported rather than trapped.
    static func encode(_ value: some Encodable, what: String) throws(X402Error) -> Data {
        do {
            return try makeEncoder().encode(value)
        } catch {
            throw X402Error(.invalidChallenge, "\(what) could not be encoded as JSON: \(error)")
        }
    }

    /// Decodes `T` from JSON, turning every failure into an `X402Error` that names the field.
    /// Duplicate keys are refused first (see `X402DuplicateKeys`).
    static func decode<T: Decodable>(_ type: T.Type, from json: Data, userInfo: [CodingUserInfoKey: any Sendable] = [:]) throws(X402Error) -> T {
        if let key = X402DuplicateKeys.firstDuplicate(in: json) {
            throw X402Error(.invalidJSON, "key \"\(key.prefix(40))\" appears twice in one object")
        }
        do {
            let decoder = JSONDecoder()
            if !userInfo.isEmpty { decoder.userInfo = userInfo }
            return try decoder.decode(type, from: json)
        } catch let error as X402Error {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            throw X402Error(.invalidJSON, "\(path(context.codingPath + [key])) is missing")
        } catch let DecodingError.typeMismatch(expected, context) {
            throw X402Error(.invalidJSON, "\(path(context.codingPath)): expected \(jsonName(expected))")
        } catch let DecodingError.valueNotFound(expected, context) {
            throw X402Error(.invalidJSON, "\(path(context.codingPath)): expected \(jsonName(expected)), got null")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw X402Error(.invalidJSON, "\(path(context.codingPath)): malformed value")
        } catch {
            // Syntax errors: the parser's description may quote input, so it is not repeated.
            throw X402Error(.invalidJSON, "not valid UTF-8 JSON")
        }
    }

    /// Set in a decoder's `userInfo`: a payment's `extensions` are left for `X402JSONReader`.
    static let extensionsReadFromBytes = CodingUserInfoKey(rawValue: "tollgate.x402.extensionsReadFromBytes")!

    /// Any JSON object, its members unread: checks a field's type without decoding it.
    struct AnyObject: Decodable {
        private struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            _ = try decoder.container(keyedBy: AnyKey.self)
        }
    }

    /// A coding path as dotted text: `payload.authorization.nonce`, `accepts[0].amount`.
    static func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return text.isEmpty ? "(top level)" : text
    }

    static func path(_ codingPath: [any CodingKey], _ key: some CodingKey) -> String {
        path(codingPath + [key])
    }

    private static func jsonName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is UInt64.Type: "an integer"
        case is [Any].Type: "an array"
        case is [String: Any].Type: "an object"
        default: "a value of type \(type)"
        }
    }
}

/// Field rules shared by the wire types: digit strings, hex, addresses.
enum X402Field {
    /// Parses an unsigned decimal digit string as x402 writes amounts and timestamps: ASCII digits
    /// only, no sign, no leading zero (so two spellings of one amount cannot both match), at most UInt64.
    static func parseUnsigned(_ text: String) -> UInt64? {
        let bytes = text.utf8
        guard let first = bytes.first, bytes.count <= 20, first != 0x30 || bytes.count == 1 else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - 0x30))
            guard !o1, !o2 else { return nil }
            value = sum
        }
        return value
    }

    /// Whether `text` is `0x` followed by hex digits encoding a whole number of bytes in `bytes`.
    static func isHex(_ text: String, bytes: ClosedRange<Int>) -> Bool {
        let utf8 = text.utf8
        guard utf8.count >= 2, utf8.count % 2 == 0, text.hasPrefix("0x") else { return false }
        let digits = utf8.dropFirst(2)
        return bytes.contains(digits.count / 2) && digits.allSatisfy { $0.isHexDigit }
    }
}

extension KeyedDecodingContainer {
    /// A digit string of atomic units (or seconds), refused with the field's path unless it parses.
    func decodeUnsignedString(forKey key: Key) throws -> UInt64 {
        let text = try decode(String.self, forKey: key)
        guard let value = X402Field.parseUnsigned(text) else {
            throw X402Error(.invalidField, "\(X402Coding.path(codingPath, key)): expected a string of decimal digits without sign or leading zero")
        }
        return value
    }

    /// An EVM address (`0x` + 40 hex digits), kept as written.
    func decodeAddress(forKey key: Key) throws -> EVMAddress {
        guard let address = EVMAddress(try decode(String.self, forKey: key)) else {
            throw X402Error(.invalidField, "\(X402Coding.path(codingPath, key)): expected 0x followed by 40 hex digits")
        }
        return address
    }

    /// A non-empty string.
    func decodeNonEmpty(forKey key: Key) throws -> String {
        let text = try decode(String.self, forKey: key)
        guard !text.isEmpty else { throw X402Error(.invalidField, "\(X402Coding.path(codingPath, key)): must not be empty") }
        return text
    }

    /// A positive `maxTimeoutSeconds`.
    func decodeTimeout(forKey key: Key) throws -> Int {
        let seconds = try decode(Int.self, forKey: key)
        guard seconds > 0 else { throw X402Error(.invalidField, "\(X402Coding.path(codingPath, key)): must be at least 1") }
        return seconds
    }

    /// `x402Version`, which must be `expected`; checked before anything else so a message of another
    /// version is reported as such rather than as a missing field.
    func checkVersion(_ expected: Int, forKey key: Key) throws {
        guard contains(key) else { throw X402Error(.unsupportedVersion, "x402Version is missing (expected \(expected))") }
        guard let version = try? decode(Int.self, forKey: key) else {
            throw X402Error(.unsupportedVersion, "x402Version is not an integer (expected \(expected))")
        }
        guard version == expected else {
            throw X402Error(.unsupportedVersion, "x402Version is \(version), expected \(expected)")
        }
    }
}
