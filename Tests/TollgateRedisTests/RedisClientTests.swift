import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("RedisClient, the async adapter")
struct RedisClientTests {
    @Test("concurrent tasks share one client and every increment lands")
    func concurrentTasks() async throws {
        try await withRedisServer { server in
            let client = RedisClient(configuration: server.configuration)
            let tasks = 16
            let perTask = 50
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<tasks {
                    group.addTask {
                        for _ in 0..<perTask {
                            try await client.send("INCR", "total")
                        }
                        try await client.withConnection { connection in
                            _ = try connection.pipeline([["SET", "task:\(task)", "done"], ["INCRBY", "batched", 10]])
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await client.send("GET", "total").int == Int64(tasks * perTask))
            #expect(try await client.send("GET", "batched").int == Int64(tasks * 10))
            let script = RedisScript("return redis.call('DBSIZE')")
            #expect(try await client.evalScript(script) == .integer(Int64(2 + tasks)))
            await client.shutdown()
        }
    }

    @Test("errors from the body reach the caller; after shutdown calls throw .closed")
    func errorsAndShutdown() async throws {
        try await withRedisServer { server in
            let client = RedisClient(configuration: server.configuration)
            try await client.send("SET", "text", "abc")
            let replyError = await #expect(throws: RedisError.self) { try await client.send("INCR", "text") }
            #expect(replyError?.code == .replyError)
            await client.shutdown()
            await client.shutdown()
            let closed = await #expect(throws: RedisError.self) { try await client.send("PING") }
            #expect(closed?.code == .closed)
        }
    }

    @Test("a client for a closed port throws connectFailed from its first call")
    func connectFailure() async throws {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: try FreePort.make())
        configuration.reconnectAttempts = 2
        configuration.reconnectBackoff = .milliseconds(10)
        let client = RedisClient(configuration: configuration)
        let error = await #expect(throws: RedisError.self) { try await client.send("PING") }
        #expect(error?.code == .connectFailed)
        await client.shutdown()
    }
}
