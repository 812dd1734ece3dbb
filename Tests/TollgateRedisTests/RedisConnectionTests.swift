import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("RedisConnection against a real redis-server")
struct RedisConnectionTests {
    @Test("every reply type converts to its RedisReply case")
    func typedReplies() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                #expect(try connection.send("SET", "k", "v") == .status("OK"))
                #expect(try connection.send("GET", "k") == .bulk(Array("v".utf8)))
                #expect(try connection.send("GET", "missing") == .null)
                #expect(try connection.send("INCRBY", "n", 41) == .integer(41))
                #expect(try connection.send("INCRBY", "n", -42) == .integer(-1))
                #expect(try connection.send("RPUSH", "list", "a", "b") == .integer(2))
                #expect(try connection.send("LRANGE", "list", 0, -1) == .array([.bulk([0x61]), .bulk([0x62])]))
                #expect(try connection.send("LRANGE", "nolist", 0, -1) == .array([]))
                let nested = try connection.send("EVAL", "return {1, {2, 'x'}, redis.status_reply('FINE')}", 0)
                #expect(nested == .array([.integer(1), .array([.integer(2), .bulk([0x78])]), .status("FINE")]))

                let replies = try connection.pipeline([["SET", "text", "abc"], ["INCR", "text"], ["GET", "n"]])
                #expect(replies[0] == .status("OK"))
                #expect(replies[1] == .error("ERR value is not an integer or out of range"))
                #expect(replies[2].int == -1)
            }
        }
    }

    @Test("reply helpers read values and throw RedisError for the wrong type")
    func replyHelpers() throws {
        let bulk = RedisReply.bulk(Array("12".utf8))
        #expect(bulk.string == "12")
        #expect(bulk.int == 12)
        #expect(try bulk.expectBulk() == Array("12".utf8))
        #expect(try RedisReply.null.expectBulk() == nil)
        #expect(try RedisReply.integer(7).expectInteger() == 7)
        #expect(try RedisReply.status("OK").expectStatus() == "OK")
        #expect(try RedisReply.array([.null]).expectArray() == [.null])
        #expect(RedisReply.null.isNull)
        let wrongType = #expect(throws: RedisError.self) { try bulk.expectInteger() }
        #expect(wrongType?.code == .unexpectedReply)
        let serverError = #expect(throws: RedisError.self) { try RedisReply.error("ERR nope").expectInteger() }
        #expect(serverError?.code == .replyError)
        #expect(serverError?.message == "ERR nope")
    }

    @Test("an error reply throws RedisError with the server's message and the connection stays usable")
    func errorReplies() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                try connection.send("SET", "text", "abc")
                let error = #expect(throws: RedisError.self) { try connection.send("INCR", "text") }
                #expect(error?.code == .replyError)
                #expect(error?.message == "ERR value is not an integer or out of range")
                #expect(error?.command == "INCR")
                #expect(error?.endpoint == "127.0.0.1:\(server.port)")
                #expect(error?.breaksConnection == false)
                #expect(connection.isConnected)
                #expect(try connection.send("PING") == .status("PONG"))
                #expect(connection.connectCount == 1)
            }
        }
    }

    @Test("values with \\0, \\r\\n and bytes >= 0x80 round-trip exactly")
    func binarySafety() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                let value: [UInt8] = [0x00, 0x0D, 0x0A, 0x80, 0xFF, 0x24, 0x2A, 0x00] + (0...255).map(UInt8.init)
                let key = RedisArgument([0x6B, 0x00, 0x0D, 0x0A, 0xC3])
                try connection.send("SET", key, RedisArgument(value))
                #expect(try connection.send("GET", key) == .bulk(value))
                #expect(try connection.send("STRLEN", key) == .integer(Int64(value.count)))
                let empty = RedisArgument([])
                try connection.send("SET", "empty", empty)
                #expect(try connection.send("GET", "empty") == .bulk([]))
                let replies = try connection.pipeline([["GET", key], ["GET", "empty"]])
                #expect(replies == [.bulk(value), .bulk([])])
            }
        }
    }

    @Test("100,000 pipelined INCRBY in chunks of 1,000 total exactly 100,000")
    func pipelinedIncrements() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                let chunk = 1_000
                var expected: Int64 = 0
                for _ in 0..<100 {
                    for _ in 0..<chunk {
                        try connection.append("INCRBY", "tg:{k1}:calls", 1)
                    }
                    #expect(connection.pendingReplyCount == chunk)
                    var last: RedisReply = .null
                    for _ in 0..<chunk {
                        last = try connection.readReply()
                    }
                    expected += Int64(chunk)
                    #expect(last == .integer(expected))
                }
                #expect(connection.pendingReplyCount == 0)
                #expect(try connection.send("GET", "tg:{k1}:calls").int == 100_000)
            }
        }
    }

    @Test("SELECT keeps databases apart, also after reconnect()")
    func selectDatabase() throws {
        try withRedisServer { server in
            try server.withConnection(configure: { $0.database = 3 }) { db3 in
                try db3.send("SET", "k", "in-3")
                try server.withConnection { db0 in
                    #expect(try db0.send("GET", "k") == .null)
                    try db0.send("SET", "k", "in-0")
                }
                try db3.reconnect()
                #expect(db3.connectCount == 2)
                #expect(try db3.send("GET", "k").string == "in-3")
            }
            let error = #expect(throws: RedisError.self) {
                try server.withConnection(configure: { $0.database = 99 }) { _ in }
            }
            #expect(error?.command == "SELECT")
            #expect(error?.message.contains("DB index is out of range") == true)
        }
    }

    @Test("AUTH with requirepass: right password works, wrong one is a clear error")
    func authentication() throws {
        try withRedisServer(.init(password: "s3cret")) { server in
            try server.withConnection { connection throws in
                #expect(try connection.send("PING") == .status("PONG"))
            }
            try server.withConnection(configure: { $0.username = "default" }) { connection throws in
                #expect(try connection.send("PING") == .status("PONG"))
            }
            let wrong = #expect(throws: RedisError.self) {
                try server.withConnection(configure: { $0.password = "wrong" }) { _ in }
            }
            #expect(wrong?.code == .authenticationFailed)
            #expect(wrong?.message.hasPrefix("WRONGPASS") == true)
            #expect(wrong?.description.contains("command AUTH") == true)
            #expect(wrong?.description.contains("wrong") == false)  // never echo the password

            let none = #expect(throws: RedisError.self) {
                try server.withConnection(configure: { $0.password = nil }) { try $0.send("GET", "k") }
            }
            #expect(none?.message.hasPrefix("NOAUTH") == true)
        }
    }

    @Test("connects over a unix socket")
    func unixSocket() throws {
        try withRedisServer(.init(unixSocket: true)) { server in
            let path = try #require(server.unixSocketPath)
            try server.withConnection(configure: { $0.endpoint = .unixSocket(path: path) }) { connection throws in
                #expect(try connection.send("SET", "via", "unix") == .status("OK"))
            }
            try server.withConnection { tcp throws in
                #expect(try tcp.send("GET", "via").string == "unix")
            }
        }
    }

    @Test("connecting to a closed port fails quickly with a clear error")
    func closedPort() throws {
        let port = try FreePort.make()
        let started = ContinuousClock.now
        let error = #expect(throws: RedisError.self) {
            _ = try RedisConnection(configuration: .init(host: "127.0.0.1", port: port))
        }
        #expect(ContinuousClock.now - started < .seconds(1))
        #expect(error?.code == .connectFailed)
        #expect(error?.message.contains("Connection refused") == true)
        #expect(error?.description.contains("127.0.0.1:\(port)") == true)
    }

    @Test("a command that outlives commandTimeout throws .timeout and the next command reconnects")
    func commandTimeout() throws {
        try withRedisServer { server in
            try server.withConnection(configure: { $0.commandTimeout = .milliseconds(200) }) { connection throws in
                let started = ContinuousClock.now
                let error = #expect(throws: RedisError.self) { try connection.send("BLPOP", "empty", 2) }
                #expect(error?.code == .timeout)
                #expect(ContinuousClock.now - started < .seconds(1))
                #expect(!connection.isConnected)
                #expect(try connection.send("PING") == .status("PONG"))
                #expect(connection.connectCount == 2)
            }
        }
    }

    @Test("a closed connection throws .closed")
    func closedConnection() throws {
        try withRedisServer { server in
            let connection = try RedisConnection(configuration: server.configuration)
            connection.close()
            connection.close()
            let error = #expect(throws: RedisError.self) { try connection.send("PING") }
            #expect(error?.code == .closed)
        }
    }
}
