import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("Reconnecting after the server goes away")
struct RedisReconnectTests {
    @Test("a connection survives a server restart on the same port, re-running AUTH and SELECT")
    func survivesRestart() throws {
        let options = RedisServer.Options(appendOnly: true, password: "pw")
        try withRedisServer(options) { server in
            try server.withConnection(configure: { $0.database = 2 }) { connection in
                try connection.send("SET", "kept", "yes")
                let script = RedisScript("return redis.call('GET', KEYS[1])")
                #expect(try connection.evalScript(script, keys: ["kept"]).string == "yes")

                try server.restart()

                // The old socket is dead. The first command may or may not notice before sending;
                // if it fails, it must say so and leave the connection marked broken, not re-send.
                do {
                    _ = try connection.send("GET", "kept")
                } catch let error as RedisError {
                    #expect(error.breaksConnection, "\(error)")
                    #expect(!connection.isConnected)
                }
                #expect(try connection.send("GET", "kept").string == "yes")  // AUTH + SELECT 2 re-run
                #expect(connection.connectCount == 2)
                // The restarted server has no scripts: NOSCRIPT reloads it.
                #expect(try connection.evalScript(script, keys: ["kept"]).string == "yes")
            }
        }
    }

    @Test("while the server is down commands fail with bounded attempts; once it is back they work")
    func serverDownThenBack() throws {
        try withRedisServer(.init(appendOnly: true)) { server in
            try server.withConnection(configure: { $0.reconnectAttempts = 3 }) { connection in
                try connection.send("INCR", "n")
                server.kill()

                let broken = #expect(throws: RedisError.self) { try connection.send("INCR", "n") }
                #expect(broken?.breaksConnection == true)

                let started = ContinuousClock.now
                let down = #expect(throws: RedisError.self) { try connection.send("INCR", "n") }
                #expect(down?.code == .connectFailed)
                #expect(down?.message.contains("after 3 attempts") == true)
                #expect(ContinuousClock.now - started < .seconds(2))

                try server.restart()
                let value = try connection.send("INCR", "n").expectInteger()
                #expect(value >= 2)  // 1 before the kill (AOF everysec may have kept it) + this one
                #expect(try connection.send("PING") == .status("PONG"))
            }
        }
    }

    @Test("reconnect() replaces a working connection and drops unread pipelined replies")
    func explicitReconnect() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                try connection.append("PING")
                try connection.reconnect()
                #expect(connection.pendingReplyCount == 0)
                #expect(connection.connectCount == 2)
                #expect(try connection.send("PING") == .status("PONG"))
            }
        }
    }
}
