#if canImport(Glibc)
import Glibc
#endif
import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("RedisCommandBuffer and pipelined replies against a real redis-server")
struct RedisCommandBufferTests {
    @Test("arguments written as RESP reach the server as the same bytes and numbers")
    func encodesArguments() throws {
        var buffer = RedisCommandBuffer()
        buffer.beginCommand(argumentCount: 3)
        buffer.appendArgument("SET")
        buffer.appendArgument("tg:{", "k1", "}:blob")
        buffer.appendArgument(bytes: [0x00, 0x0D, 0x0A, 0xFF])
        buffer.beginCommand(argumentCount: 3)
        buffer.appendArgument("INCRBY")
        buffer.appendArgument("n", "um")
        buffer.appendArgument(Int64(-42))
        buffer.beginCommand(argumentCount: 3)
        buffer.appendArgument("INCRBY")
        buffer.appendArgument("num")
        buffer.appendArgument(UInt64(1) << 50)
        buffer.beginCommand(argumentCount: 5)
        buffer.appendArgument("RPUSH")
        buffer.appendArgument("l", "i", "s", "t")
        buffer.appendArgument(0)
        buffer.appendArgument("")
        buffer.appendArgument(Int64.min)
        #expect(buffer.commandCount == 4 && buffer.isComplete)
        let header = Array("*3\r\n$3\r\nSET\r\n$12\r\ntg:{k1}:blob\r\n$4\r\n".utf8)
        #expect(Array(buffer.bytes.prefix(header.count + 6)) == header + [0x00, 0x0D, 0x0A, 0xFF, 0x0D, 0x0A])

        try withRedisServer { server in
            try server.withConnection { connection in
                try connection.append(buffer)
                let replies = try (0..<4).map { _ in try connection.readReply() }
                #expect(replies == [.status("OK"), .integer(-42), .integer((1 << 50) - 42), .integer(3)])
                #expect(try connection.send("GET", "tg:{k1}:blob") == .bulk([0x00, 0x0D, 0x0A, 0xFF]))
                #expect(try connection.send("LRANGE", "list", 0, -1) == .array([.bulk(Array("0".utf8)), .bulk([]), .bulk(Array("\(Int64.min)".utf8))]))
            }
        }
        buffer.removeAll()
        #expect(buffer.bytes.isEmpty && buffer.commandCount == 0)
    }

    @Test("flush, poll the socket, readAvailable and bufferedReply take replies without blocking")
    func pollsForReplies() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                var buffer = RedisCommandBuffer()
                for index in 0..<500 {
                    buffer.beginCommand(argumentCount: 2)
                    buffer.appendArgument("INCR")
                    buffer.appendArgument("counter:\(index % 7)")
                }
                #expect(try connection.bufferedReply() == nil)  // nothing owed yet
                try connection.append(buffer)
                try connection.flush()
                #expect(connection.pendingReplyCount == 500)
                var replies: [RedisReply] = []
                let fd = try #require(connection.fileDescriptor)
                let stop = ContinuousClock.now + .seconds(10)
                while replies.count < 500, ContinuousClock.now < stop {
                    var item = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    guard poll(&item, 1, 1_000) == 1 else { continue }
                    try connection.readAvailable()
                    while let reply = try connection.bufferedReply() {
                        replies.append(reply)
                    }
                }
                #expect(replies.count == 500 && connection.pendingReplyCount == 0)
                #expect(replies.suffix(7).compactMap(\.int).sorted() == [71, 71, 71, 71, 72, 72, 72])
                #expect(try connection.bufferedReply() == nil)
                #expect(try connection.send("PING") == .status("PONG"))  // the connection is in step
            }
        }
    }

    @Test("disconnect drops pending replies; the next command reconnects")
    func disconnectDropsPending() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                try connection.append(["SET", "a", "1"])
                try connection.flush()
                connection.disconnect()
                #expect(connection.pendingReplyCount == 0 && connection.fileDescriptor == nil)
                #expect(try connection.send("GET", "a") == .bulk(Array("1".utf8)))
            }
        }
    }
}
