/// One binary-safe argument of a Redis command: the bytes sent on the wire.
///
/// String and integer literals convert implicitly, so commands read naturally while values
/// stay bytes:
/// ```swift
/// let payload: [UInt8] = [0x00, 0x0D, 0x0A, 0xFF]
/// try connection.send("SET", "tg:{k1}:blob", RedisArgument(payload))
/// try connection.send("INCRBY", "tg:{k1}:calls", RedisArgument(5))
/// ```
public struct RedisArgument: Sendable, Hashable {
    /// The bytes of the argument, sent with an explicit length (`\0` and `\r\n` are safe).
    public var bytes: [UInt8]

    /// An argument made of raw bytes.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// An argument made of the UTF-8 bytes of `string`.
    public init(_ string: String) {
        self.bytes = Array(string.utf8)
    }

    /// An argument made of the decimal text of `value`, as Redis expects integers.
    public init(_ value: some BinaryInteger) {
        self.bytes = Array(String(value).utf8)
    }
}

extension RedisArgument: ExpressibleByStringLiteral, ExpressibleByStringInterpolation {
    /// An argument from a string literal, e.g. a command name or a key.
    public init(stringLiteral value: String) {
        self.init(value)
    }
}

extension RedisArgument: ExpressibleByIntegerLiteral {
    /// An argument from an integer literal, sent as its decimal text.
    public init(integerLiteral value: Int64) {
        self.init(value)
    }
}

extension RedisArgument: CustomStringConvertible {
    /// The argument as UTF-8 text, with invalid bytes replaced; for logs and error context.
    public var description: String {
        String(decoding: self.bytes, as: UTF8.self)
    }
}
