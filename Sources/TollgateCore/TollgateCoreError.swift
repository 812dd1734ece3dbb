/// The one error type of TollgateCore: refused input (a bad id, amount or timestamp), with context.
public struct TollgateCoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of input was refused.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        /// A period id that does not parse or does not name a period of the interval.
        public static let invalidPeriodID = Code(name: "invalidPeriodID")
        /// A timestamp string that is not RFC 3339 or is out of range.
        public static let invalidTimestamp = Code(name: "invalidTimestamp")
        /// A decimal money amount that is malformed, too precise, or too large.
        public static let invalidAmount = Code(name: "invalidAmount")
        /// Arithmetic that would overflow its integer type.
        public static let overflow = Code(name: "overflow")
        /// Two amounts in different assets were combined.
        public static let assetMismatch = Code(name: "assetMismatch")
        /// The code's name.
        public var description: String { name }
    }

    /// What kind of input was refused.
    public var code: Code
    /// A human-readable explanation naming the bad value.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }
}
