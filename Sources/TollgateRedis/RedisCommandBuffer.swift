/// Commands written straight into RESP bytes, for pipelines where building `[RedisArgument]`
/// arrays would cost more than Redis takes to run the commands.
///
/// Each argument is written once, into one growing byte buffer that can be reused (`removeAll`
/// keeps its capacity). Keys made of parts (`tg:{`, key id, `}:u:`, ...) are written part by part
/// without building the joined `String` first, and integers without going through `String`.
/// `RedisConnection.append(_:)` hands the bytes to hiredis in one copy.
///
/// ```swift
/// var buffer = RedisCommandBuffer()
/// buffer.beginCommand(argumentCount: 3)
/// buffer.appendArgument("INCRBY")
/// buffer.appendArgument("tg:{", keyID, "}:calls")
/// buffer.appendArgument(5)
/// try connection.append(buffer)
/// let reply = try connection.readReply()
/// ```
public struct RedisCommandBuffer: Sendable {
    /// The RESP bytes of the commands written so far.
    public private(set) var bytes: [UInt8] = []
    /// How many commands the buffer holds (each gets one reply).
    public private(set) var commandCount = 0
    /// Arguments the current command still owes; a new command may begin only at zero.
    private var argumentsOwed = 0

    /// An empty buffer with room for `capacity` bytes.
    public init(capacity: Int = 0) {
        self.bytes.reserveCapacity(capacity)
    }

    /// Whether every command begun has all its arguments.
    public var isComplete: Bool { self.argumentsOwed == 0 }

    /// Empties the buffer and keeps its memory for the next commands.
    public mutating func removeAll() {
        self.bytes.removeAll(keepingCapacity: true)
        self.commandCount = 0
        self.argumentsOwed = 0
    }

    /// Starts a command of `argumentCount` arguments (the command name counts as one).
    public mutating func beginCommand(argumentCount: Int) {
        precondition(self.argumentsOwed == 0, "a command began with \(self.argumentsOwed) arguments of the previous one unwritten")
        precondition(argumentCount > 0, "a Redis command needs at least a name")
        self.bytes.append(UInt8(ascii: "*"))
        self.appendDecimal(UInt64(argumentCount))
        self.appendCRLF()
        self.argumentsOwed = argumentCount
        self.commandCount += 1
    }

    /// One argument: the UTF-8 bytes of `text`.
    public mutating func appendArgument(_ text: String) {
        self.appendHeader(length: text.utf8.count)
        self.bytes.append(contentsOf: text.utf8)
        self.appendCRLF()
    }

    /// One argument made of two strings joined.
    public mutating func appendArgument(_ a: String, _ b: String) {
        self.appendHeader(length: a.utf8.count + b.utf8.count)
        self.bytes.append(contentsOf: a.utf8)
        self.bytes.append(contentsOf: b.utf8)
        self.appendCRLF()
    }

    /// One argument made of three strings joined.
    public mutating func appendArgument(_ a: String, _ b: String, _ c: String) {
        self.appendHeader(length: a.utf8.count + b.utf8.count + c.utf8.count)
        self.bytes.append(contentsOf: a.utf8)
        self.bytes.append(contentsOf: b.utf8)
        self.bytes.append(contentsOf: c.utf8)
        self.appendCRLF()
    }

    /// One argument made of four strings joined.
    public mutating func appendArgument(_ a: String, _ b: String, _ c: String, _ d: String) {
        self.appendHeader(length: a.utf8.count + b.utf8.count + c.utf8.count + d.utf8.count)
        self.bytes.append(contentsOf: a.utf8)
        self.bytes.append(contentsOf: b.utf8)
        self.bytes.append(contentsOf: c.utf8)
        self.bytes.append(contentsOf: d.utf8)
        self.appendCRLF()
    }

    /// One argument: raw bytes (binary-safe).
    public mutating func appendArgument(bytes: [UInt8]) {
        self.appendHeader(length: bytes.count)
        self.bytes.append(contentsOf: bytes)
        self.appendCRLF()
    }

    /// One argument: the decimal text of `value`, as Redis expects integers.
    public mutating func appendArgument(_ value: Int64) {
        guard value < 0 else { return self.appendArgument(UInt64(value)) }
        let magnitude = value.magnitude
        self.appendHeader(length: 1 + Self.decimalDigits(magnitude))
        self.bytes.append(UInt8(ascii: "-"))
        self.appendDecimal(magnitude)
        self.appendCRLF()
    }

    /// One argument: the decimal text of `value`.
    public mutating func appendArgument(_ value: UInt64) {
        self.appendHeader(length: Self.decimalDigits(value))
        self.appendDecimal(value)
        self.appendCRLF()
    }

    /// One argument: the decimal text of `value`.
    public mutating func appendArgument(_ value: Int) {
        self.appendArgument(Int64(value))
    }

    private mutating func appendHeader(length: Int) {
        precondition(self.argumentsOwed > 0, "more arguments written than the command declared")
        self.argumentsOwed -= 1
        self.bytes.append(UInt8(ascii: "$"))
        self.appendDecimal(UInt64(length))
        self.appendCRLF()
    }

    private mutating func appendCRLF() {
        self.bytes.append(UInt8(ascii: "\r"))
        self.bytes.append(UInt8(ascii: "\n"))
    }

    /// Appends the decimal digits of `value` without making a `String`.
    private mutating func appendDecimal(_ value: UInt64) {
        let count = Self.decimalDigits(value)
        let start = self.bytes.count
        self.bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: count))
        var rest = value
        var index = start + count - 1
        while rest > 0 {
            self.bytes[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            index -= 1
        }
    }

    static func decimalDigits(_ value: UInt64) -> Int {
        var count = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            count += 1
        }
        return count
    }
}
