/// Errors of the reverse proxy: a code for metrics and tests, and a message for people.
public struct ProxyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// The configuration cannot be used (bad address, bad upstream URL).
        case invalidConfiguration = "invalid_configuration"
        /// `start()` was called twice, or after `shutdown()`.
        case alreadyStarted = "already_started"
        /// The listening socket could not be bound.
        case bindFailed = "bind_failed"
        /// The upstream did not answer in time.
        case upstreamTimeout = "upstream_timeout"
        /// The upstream connection closed before the response ended.
        case upstreamClosed = "upstream_closed"
    }

    /// What went wrong.
    public var code: Code
    /// Details for people.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }
}
