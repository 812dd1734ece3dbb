#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking connection to one Redis server, wrapping a hiredis context.
///
/// Threading: not `Sendable` and not thread-safe. One thread owns a connection at a time, because
/// a hiredis context has a single read buffer and reply order. Every call blocks its thread on
/// socket I/O, so never use a connection on the Swift concurrency pool or an event loop; from
/// async code use `RedisClient`, which keeps one on a thread of its own.
///
/// Failures: a server error reply to `send` is thrown as `RedisError.Code.replyError` and the
/// connection stays usable. An I/O, EOF, protocol or timeout error *breaks* the connection: the
/// error is thrown and the command is not re-sent, because the server may already have run it
/// (a lost reply is not a lost write, and re-sending `INCRBY` would count twice). The next command
/// reconnects, with `reconnectAttempts` bounded attempts and backoff, and re-runs `AUTH`/`SELECT`.
/// Callers that know a command is idempotent may retry it themselves.
///
/// ```swift
/// let connection = try RedisConnection(configuration: .init(host: "127.0.0.1", port: 6379))
/// defer { connection.close() }
/// try connection.send("SET", "tg:{k1}:plan", "pro")
/// let calls = try connection.send("INCRBY", "tg:{k1}:calls", 3).expectInteger()
/// let replies = try connection.pipeline([["INCR", "a"], ["INCR", "b"]])
/// ```
public final class RedisConnection {
    /// Where and how this connection connects.
    public let configuration: RedisConfiguration

    /// The live hiredis context; `nil` before the first connect, after a break, and after `close()`.
    var context: HiredisContext?
    /// Set by `close()`; a closed connection never reconnects.
    var isClosed = false
    /// Commands appended whose replies have not been read yet.
    public internal(set) var pendingReplyCount = 0
    /// How many times a connection was established, counting every reconnect.
    public internal(set) var connectCount = 0

    /// Connects now (one attempt) and runs `AUTH`/`SELECT`; throws `RedisError` if that fails.
    public init(configuration: RedisConfiguration) throws {
        self.configuration = configuration
        do {
            try self.connect(attempts: 1)
        } catch {
            self.isClosed = true  // nothing to free; lets deinit's check pass
            throw error
        }
    }

    /// A connection that connects on its first command (used by `RedisClient`).
    init(unconnected configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    deinit {
        assert(self.isClosed, "RedisConnection to \(self.configuration.endpoint) deinitialised without close()")
        if let context { hiredis_free(context) }
    }

    /// Whether a server connection is open now (false before a reconnect and after `close()`).
    public var isConnected: Bool { self.context != nil }

    /// Closes the connection and frees the hiredis context; later calls throw `.closed`. Idempotent.
    public func close() {
        if let context { hiredis_free(context) }
        self.context = nil
        self.pendingReplyCount = 0
        self.isClosed = true
    }

    /// Sends one command and waits for its reply; a server error reply is thrown as `RedisError`.
    @discardableResult
    public func send(_ arguments: [RedisArgument]) throws -> RedisReply {
        precondition(!arguments.isEmpty, "a Redis command needs at least a name")
        precondition(self.pendingReplyCount == 0, "send() with \(self.pendingReplyCount) pipelined replies unread")
        let context = try self.ensureConnected()
        let raw = hiredis_withArgv(arguments) { hiredis_commandArgv(context, $0, $1, $2) }
        guard let raw else {
            throw self.breakConnection(errno: errno, command: arguments)
        }
        let reply = hiredis_consumeReply(raw)
        if case .error(let message) = reply {
            throw RedisError(
                replyError: message,
                command: Self.commandName(arguments),
                endpoint: self.configuration.endpoint.description
            )
        }
        return reply
    }

    /// Sends one command and waits for its reply; a server error reply is thrown as `RedisError`.
    @discardableResult
    public func send(_ arguments: RedisArgument...) throws -> RedisReply {
        try self.send(arguments)
    }

    /// Queues a command without waiting; read its reply later, in order, with `readReply()`.
    public func append(_ arguments: [RedisArgument]) throws {
        precondition(!arguments.isEmpty, "a Redis command needs at least a name")
        let context = try self.ensureConnected()
        let status = hiredis_withArgv(arguments) { hiredis_appendCommandArgv(context, $0, $1, $2) }
        guard status == Hiredis.ok else {
            throw self.breakConnection(errno: errno, command: arguments)
        }
        self.pendingReplyCount += 1
    }

    /// Queues a command without waiting; read its reply later, in order, with `readReply()`.
    public func append(_ arguments: RedisArgument...) throws {
        try self.append(arguments)
    }

    /// Flushes queued commands and returns the next reply; an error reply is returned, not thrown.
    public func readReply() throws -> RedisReply {
        precondition(self.pendingReplyCount > 0, "readReply() with no command appended")
        guard let context = self.context else {
            // Unreachable: a break resets the pending count. Kept as an error, not a crash.
            throw RedisError(code: .closed, message: "no connection", endpoint: self.configuration.endpoint.description)
        }
        var raw: UnsafeMutableRawPointer?
        guard hiredis_getReply(context, &raw) == Hiredis.ok else {
            throw self.breakConnection(errno: errno, command: nil)
        }
        self.pendingReplyCount -= 1
        guard let raw else { return .null }
        return hiredis_consumeReply(raw)
    }

    /// Sends all commands in one write and returns their replies in order; error replies are returned, not thrown.
    public func pipeline(_ commands: [[RedisArgument]]) throws -> [RedisReply] {
        precondition(self.pendingReplyCount == 0, "pipeline() with \(self.pendingReplyCount) pipelined replies unread")
        for command in commands {
            try self.append(command)
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            replies.append(try self.readReply())
        }
        return replies
    }

    /// The command name for error context; later arguments are left out as they may be secrets.
    static func commandName(_ arguments: [RedisArgument]?) -> String? {
        arguments?.first.map { String($0.description.prefix(32)).uppercased() }
    }
}
