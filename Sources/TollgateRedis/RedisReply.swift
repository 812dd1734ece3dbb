/// A reply from Redis, one case per RESP2 reply type.
///
/// ```swift
/// let reply = try connection.send("INCRBY", "tg:{k1}:calls", 1)
/// let total = try reply.expectInteger()
/// ```
public enum RedisReply: Sendable, Hashable {
    /// A status reply such as `OK` or `PONG`.
    case status(String)
    /// An error reply such as `ERR value is not an integer or out of range`.
    case error(String)
    /// An integer reply.
    case integer(Int64)
    /// A bulk string reply: raw bytes, not necessarily UTF-8.
    case bulk([UInt8])
    /// A nil bulk string or nil array reply.
    case null
    /// An array reply (multi-bulk), possibly nested.
    case array([RedisReply])
}

extension RedisReply {
    /// The text of a status, bulk or error reply (bulk bytes decoded as UTF-8), or the decimal text of an integer.
    public var string: String? {
        switch self {
        case .status(let text), .error(let text): text
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .integer(let value): String(value)
        case .null, .array: nil
        }
    }

    /// The bytes of a bulk or status reply.
    public var bytes: [UInt8]? {
        switch self {
        case .bulk(let bytes): bytes
        case .status(let text): Array(text.utf8)
        default: nil
        }
    }

    /// The value of an integer reply, or of a bulk reply holding decimal text (as `GET` returns counters).
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk(let bytes): Int64(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }

    /// The elements of an array reply.
    public var array: [RedisReply]? {
        if case .array(let elements) = self { elements } else { nil }
    }

    /// Whether this is a nil reply.
    public var isNull: Bool {
        if case .null = self { true } else { false }
    }

    /// The message of an error reply.
    public var errorMessage: String? {
        if case .error(let message) = self { message } else { nil }
    }

    /// The integer, or a thrown `RedisError` (the server's error, or `.unexpectedReply`).
    public func expectInteger() throws -> Int64 {
        if case .integer(let value) = self { return value }
        throw self.unexpected("an integer")
    }

    /// The bulk bytes, or a thrown `RedisError`; `nil` for a nil reply (a missing key).
    public func expectBulk() throws -> [UInt8]? {
        switch self {
        case .bulk(let bytes): return bytes
        case .null: return nil
        default: throw self.unexpected("a bulk string")
        }
    }

    /// The status text (e.g. `OK`), or a thrown `RedisError`.
    public func expectStatus() throws -> String {
        if case .status(let text) = self { return text }
        throw self.unexpected("a status")
    }

    /// The array elements, or a thrown `RedisError`; `nil` for a nil reply.
    public func expectArray() throws -> [RedisReply]? {
        switch self {
        case .array(let elements): return elements
        case .null: return nil
        default: throw self.unexpected("an array")
        }
    }

    /// The reply itself, or the server's error thrown as a `RedisError`.
    public func expectNotError(command: String? = nil) throws -> RedisReply {
        if case .error(let message) = self { throw RedisError(replyError: message, command: command) }
        return self
    }

    private func unexpected(_ expected: String) -> RedisError {
        if case .error(let message) = self { return RedisError(replyError: message, command: nil) }
        return RedisError(code: .unexpectedReply, message: "expected \(expected), got \(self)")
    }
}

extension RedisReply: CustomStringConvertible {
    /// A short rendering of the reply for error messages and test output.
    public var description: String {
        switch self {
        case .status(let text): "status(\(text))"
        case .error(let text): "error(\(text))"
        case .integer(let value): "integer(\(value))"
        case .bulk(let bytes): "bulk(\(bytes.count) bytes: \(String(decoding: bytes.prefix(64), as: UTF8.self).debugDescription))"
        case .null: "null"
        case .array(let elements): "array(\(elements.map(\.description).joined(separator: ", ")))"
        }
    }
}
