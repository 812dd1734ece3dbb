#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension RedisConnection {
    /// Queues every command in `buffer` without waiting (one copy into hiredis's output buffer).
    ///
    /// Their replies come back in order through `readReply()`, or through `bufferedReply()` after
    /// `readAvailable()` when the owner polls the socket itself.
    public func append(_ buffer: RedisCommandBuffer) throws {
        precondition(buffer.isComplete, "a command in the buffer is missing arguments")
        guard buffer.commandCount > 0 else { return }
        let context = try self.ensureConnected()
        guard hiredis_appendFormattedCommand(context, buffer.bytes) == Hiredis.ok else {
            throw self.breakConnection(errno: errno, command: nil)
        }
        self.pendingReplyCount += buffer.commandCount
    }

    /// Writes every queued command to the socket now, so the server starts on them while the caller
    /// does other work; blocks only while the socket's send buffer is full.
    public func flush() throws {
        guard let context = self.context else { return }
        var done: CInt = 0
        while done == 0 {
            guard hiredis_bufferWrite(context, &done) == Hiredis.ok else {
                throw self.breakConnection(errno: errno, command: nil)
            }
        }
    }

    /// The connection's socket, to poll for replies; nil while not connected.
    public var fileDescriptor: Int32? {
        self.context.map { hiredis_fileDescriptor($0) }
    }

    /// Reads what the socket holds into the reply buffer: one `read`, which blocks if nothing has
    /// arrived, so call it when a poll said the socket is readable. Then take the replies with
    /// `bufferedReply()`. A closed or failed socket breaks the connection and throws.
    public func readAvailable() throws {
        guard let context = self.context else { throw self.closedError() }
        guard hiredis_bufferRead(context) == Hiredis.ok else {
            throw self.breakConnection(errno: errno, command: nil)
        }
    }

    /// The next reply already read from the socket, or nil; never does I/O. Error replies are returned, not thrown.
    public func bufferedReply() throws -> RedisReply? {
        guard let context = self.context, self.pendingReplyCount > 0 else { return nil }
        var raw: UnsafeMutableRawPointer?
        guard hiredis_getReplyFromReader(context, &raw) == Hiredis.ok else {
            throw self.breakConnection(errno: errno, command: nil)
        }
        guard let raw else { return nil }
        self.pendingReplyCount -= 1
        return hiredis_consumeReply(raw)
    }

    /// Drops the server connection with whatever replies are pending (the commands may or may not
    /// have run); the next command reconnects. For owners that give up waiting, e.g. after a timeout.
    public func disconnect() {
        self.dropContext()
    }
}
