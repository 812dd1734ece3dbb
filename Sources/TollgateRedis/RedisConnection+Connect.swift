#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension RedisConnection {
    /// Drops the current connection, if any, and connects again with the configured attempts and backoff.
    ///
    /// Replies still pending from `append` are lost; the commands may or may not have run.
    public func reconnect() throws {
        guard !self.isClosed else { throw self.closedError() }
        self.dropContext()
        try self.connect(attempts: self.configuration.reconnectAttempts)
    }

    /// The live context, reconnecting first if an earlier error broke the connection.
    func ensureConnected() throws -> HiredisContext {
        if let context { return context }
        guard !self.isClosed else { throw self.closedError() }
        try self.connect(attempts: self.configuration.reconnectAttempts)
        return self.context!
    }

    /// Connects with up to `attempts` tries, pausing with doubling backoff between them.
    ///
    /// A refused `AUTH` or `SELECT` is not retried: the server answered, and would answer the same again.
    func connect(attempts: Int) throws {
        let attempts = max(1, attempts)
        var backoff = self.configuration.reconnectBackoff
        var lastError: RedisError?
        for attempt in 1...attempts {
            if attempt > 1 {
                sleepBlocking(backoff)
                backoff = min(backoff * 2, self.configuration.maxReconnectBackoff)
            }
            do {
                self.context = try self.connectOnce()
                self.connectCount += 1
                return
            } catch let error as RedisError where error.code == .authenticationFailed || error.code == .replyError {
                throw error
            } catch let error as RedisError {
                lastError = error
            }
        }
        var error = lastError!
        if attempts > 1 { error.message += " (after \(attempts) attempts)" }
        throw error
    }

    /// Opens one hiredis context and runs `AUTH` and `SELECT` on it; frees it on any failure.
    private func connectOnce() throws -> HiredisContext {
        let endpoint = self.configuration.endpoint
        let timeout = timeval(self.configuration.connectTimeout)
        let made: HiredisContext? =
            switch endpoint {
            case .tcp(let host, let port): hiredis_connectWithTimeout(host, port, timeout)
            case .unixSocket(let path): hiredis_connectUnixWithTimeout(path, timeout)
            }
        guard let context = made else {
            throw RedisError(code: .outOfMemory, message: "could not allocate a hiredis context", endpoint: endpoint.description)
        }
        var ok = false
        defer { if !ok { hiredis_free(context) } }

        if context.pointee.err != 0 {
            throw self.hiredisError(context, errno: errno, code: .connectFailed, command: nil)
        }
        if hiredis_setTimeout(context, timeval(self.configuration.commandTimeout)) != Hiredis.ok {
            throw self.hiredisError(context, errno: errno, code: .connectFailed, command: nil)
        }
        if case .tcp = endpoint, hiredis_enableKeepAlive(context) != Hiredis.ok {
            throw self.hiredisError(context, errno: errno, code: .connectFailed, command: nil)
        }
        if let password = self.configuration.password {
            var auth: [RedisArgument] = ["AUTH"]
            if let username = self.configuration.username { auth.append(RedisArgument(username)) }
            auth.append(RedisArgument(password))
            if case .error(let message) = try self.handshake(context, auth) {
                throw RedisError(code: .authenticationFailed, message: message, command: "AUTH", endpoint: endpoint.description)
            }
        }
        if self.configuration.database != 0 {
            if case .error(let message) = try self.handshake(context, ["SELECT", RedisArgument(self.configuration.database)]) {
                throw RedisError(code: .replyError, message: message, command: "SELECT", endpoint: endpoint.description)
            }
        }
        ok = true
        return context
    }

    /// One command on a context that is not yet `self.context`, for the connect handshake.
    private func handshake(_ context: HiredisContext, _ arguments: [RedisArgument]) throws -> RedisReply {
        guard let raw = hiredis_withArgv(arguments, { hiredis_commandArgv(context, $0, $1, $2) }) else {
            throw self.hiredisError(context, errno: errno, code: nil, command: Self.commandName(arguments))
        }
        return hiredis_consumeReply(raw)
    }

    /// Marks the connection broken after a failed hiredis call and returns the error to throw.
    ///
    /// hiredis contexts cannot be reused after an error, so the context is freed; the next
    /// command reconnects. Pending pipelined replies are lost with it.
    func breakConnection(errno savedErrno: CInt, command: [RedisArgument]?) -> RedisError {
        guard let context = self.context else { return self.closedError() }
        let error = self.hiredisError(context, errno: savedErrno, code: nil, command: Self.commandName(command))
        self.dropContext()
        return error
    }

    func dropContext() {
        if let context { hiredis_free(context) }
        self.context = nil
        self.pendingReplyCount = 0
    }

    func closedError() -> RedisError {
        RedisError(code: .closed, message: "the connection was closed", endpoint: self.configuration.endpoint.description)
    }

    /// A `RedisError` from `ctx->err`/`errstr`; `code` overrides the mapping (e.g. `.connectFailed`).
    private func hiredisError(_ context: HiredisContext, errno savedErrno: CInt, code: RedisError.Code?, command: String?) -> RedisError {
        let (err, message, savedErrno) = hiredis_error(context, errno: savedErrno)
        let timedOut = err == Hiredis.errIO && (savedErrno == EAGAIN || savedErrno == EWOULDBLOCK)
        let mapped: RedisError.Code =
            switch err {
            case _ where timedOut: .timeout
            case Hiredis.errIO: .io
            case Hiredis.errEOF: .eof
            case Hiredis.errProtocol: .protocol
            case Hiredis.errOOM: .outOfMemory
            default: .other
            }
        return RedisError(
            code: code ?? mapped,
            message: timedOut ? "\(message) (no reply within \(self.configuration.commandTimeout))" : message,
            command: command,
            endpoint: self.configuration.endpoint.description,
            hiredisError: err,
            errno: err == Hiredis.errIO ? savedErrno : nil
        )
    }
}

/// Blocks the calling thread; only ever called on a connection's owning thread, between reconnect attempts.
private func sleepBlocking(_ duration: Duration) {
    let (seconds, attoseconds) = duration.components
    var request = timespec(tv_sec: .init(seconds), tv_nsec: .init(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR {
        request = remaining
    }
}
