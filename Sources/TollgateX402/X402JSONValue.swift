/// Any JSON value, for the open-ended parts of x402 messages: `extra`, `extensions`, `outputSchema`.
///
/// A whole number within `Int64` is an integer (`2e3` and `0.0` too, as `JSONDecoder` reads
/// them); any other number becomes a `Double`. Nothing Tollgate bills is ever read from here: amounts have typed fields of their own.
public enum X402JSONValue: Sendable, Hashable, Codable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number without fraction that fits in Int64.
    case integer(Int64)
    /// Any other number (never money).
    case number(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([X402JSONValue])
    /// An object.
    case object([String: X402JSONValue])

    /// The string, when this value is one.
    public var stringValue: String? {
        if case .string(let text) = self { text } else { nil }
    }

    /// The member `key`, when this value is an object that has it.
    public subscript(key: String) -> X402JSONValue? {
        if case .object(let members) = self { members[key] } else { nil }
    }

    /// Decodes any JSON value.
    public init(from decoder: any Decoder) throws {
        // Each wrong guess costs a thrown DecodingError, the dearest part of decoding a payment:
        // strings and objects, what `extra` and `extensions` hold most, are tried first. A guess
        // succeeds only on its own JSON type, so the order does not change what is decoded.
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([String: X402JSONValue].self) {
            self = .object(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else {
            self = .array(try container.decode([X402JSONValue].self))
        }
    }

    /// Encodes the value as it was decoded.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
