/// The one error type of TollgateRedis: what failed (`code`), hiredis's or the server's text,
/// and the command and endpoint it happened on.
///
/// ```swift
/// do { try connection.send("INCR", "name") }
/// catch let error as RedisError where error.code == .replyError { print(error.message) }
/// ```
public struct RedisError: Error, Sendable, Hashable {
    /// What kind of failure this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case io, eof, `protocol`, outOfMemory, other, timeout
            case connectFailed, authenticationFailed, replyError, noScript, unexpectedReply, closed
        }

        private let value: Value

        private init(_ value: Value) { self.value = value }

        /// A read or write on the socket failed (hiredis `REDIS_ERR_IO`); the connection is broken.
        public static let io = Code(.io)
        /// The server closed the connection (`REDIS_ERR_EOF`), e.g. it restarted; the connection is broken.
        public static let eof = Code(.eof)
        /// The server sent something hiredis could not parse (`REDIS_ERR_PROTOCOL`); the connection is broken.
        public static let `protocol` = Code(.protocol)
        /// hiredis ran out of memory (`REDIS_ERR_OOM`).
        public static let outOfMemory = Code(.outOfMemory)
        /// Any other hiredis failure (`REDIS_ERR_OTHER`), e.g. a failed name lookup.
        public static let other = Code(.other)
        /// No reply within the command timeout; the command may still run, so the connection is broken.
        public static let timeout = Code(.timeout)
        /// Connecting (TCP or unix socket) failed after every allowed attempt.
        public static let connectFailed = Code(.connectFailed)
        /// `AUTH` on connect was refused, e.g. a wrong password.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// The server answered the command with an error reply; the connection is still usable.
        public static let replyError = Code(.replyError)
        /// `EVALSHA` named a script the server does not have (and reloading did not help).
        public static let noScript = Code(.noScript)
        /// The reply had a different type than the caller expected.
        public static let unexpectedReply = Code(.unexpectedReply)
        /// The connection or client was closed by its owner.
        public static let closed = Code(.closed)

        /// The code's name, e.g. `eof`.
        public var description: String { self.value.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// hiredis's `errstr`, the server's error reply, or our own explanation.
    public var message: String
    /// The command name (first argument only: later ones may hold secrets), if a command failed.
    public var command: String?
    /// Where the connection points: `host:port` or the unix socket path.
    public var endpoint: String?
    /// The hiredis `ctx->err` value (`REDIS_ERR_IO`, ...), when hiredis reported the failure.
    public var hiredisError: Int32?
    /// `errno` right after the failing hiredis call, when hiredis reported an I/O failure.
    public var errno: Int32?

    /// An error with the given parts.
    public init(
        code: Code,
        message: String,
        command: String? = nil,
        endpoint: String? = nil,
        hiredisError: Int32? = nil,
        errno: Int32? = nil
    ) {
        self.code = code
        self.message = message
        self.command = command
        self.endpoint = endpoint
        self.hiredisError = hiredisError
        self.errno = errno
    }

    /// The error for a server error reply; `NOSCRIPT` replies get their own code.
    public init(replyError message: String, command: String?, endpoint: String? = nil) {
        let code: Code = message.hasPrefix("NOSCRIPT") ? .noScript : .replyError
        self.init(code: code, message: message, command: command, endpoint: endpoint)
    }

    /// Whether the connection is unusable after this error and must reconnect before the next command.
    public var breaksConnection: Bool {
        [.io, .eof, .protocol, .outOfMemory, .other, .timeout, .connectFailed].contains(self.code)
    }
}

extension RedisError: CustomStringConvertible {
    /// E.g. `RedisError.eof: Server closed the connection (REDIS_ERR_EOF; command INCRBY; 127.0.0.1:6379)`.
    public var description: String {
        var context: [String] = []
        if let hiredisError { context.append(Hiredis.errorName(hiredisError)) }
        if let command { context.append("command \(command)") }
        if let endpoint { context.append(endpoint) }
        let suffix = context.isEmpty ? "" : " (\(context.joined(separator: "; ")))"
        return "RedisError.\(self.code): \(self.message)\(suffix)"
    }
}
