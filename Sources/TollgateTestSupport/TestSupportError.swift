/// The one error type of TollgateTestSupport: a helper could not set up or tear down a fixture.
public struct TestSupportError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, with the details needed to reproduce it (paths, ports, log tails).
    public var message: String

    /// An error with the given message.
    public init(_ message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { self.message }
}
