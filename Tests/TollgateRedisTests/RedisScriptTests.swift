import Testing
import TollgateRedis
import TollgateTestSupport

@Suite("Lua scripts through EVALSHA")
struct RedisScriptTests {
    static let charge = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")

    @Test("a script still runs after SCRIPT FLUSH: NOSCRIPT reloads it and retries once")
    func noScriptFallback() throws {
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(script.sha == nil)
        try withRedisServer { server in
            try server.withConnection { connection in
                #expect(try connection.evalScript(script, keys: ["tg:{k1}:calls"], args: [5]) == .integer(5))
                let sha = try #require(script.sha)
                #expect(sha.count == 40)

                try connection.send("SCRIPT", "FLUSH")
                let raw = #expect(throws: RedisError.self) {
                    try connection.send("EVALSHA", RedisArgument(sha), 1, "tg:{k1}:calls", 1)
                }
                #expect(raw?.code == .noScript)

                #expect(try connection.evalScript(script, keys: ["tg:{k1}:calls"], args: [5]) == .integer(10))
                #expect(script.sha == sha)
            }
        }
    }

    @Test("pipelined script runs reload after SCRIPT FLUSH and re-send only the refused calls")
    func pipelinedNoScriptFallback() throws {
        try withRedisServer { server in
            try server.withConnection { connection in
                let calls = (0..<100).map { _ in RedisScriptCall(keys: ["tg:{k2}:calls"], args: [2]) }
                let first = try connection.pipelineScript(Self.charge, calls: calls)
                #expect(first.last == .integer(200))
                try connection.send("SCRIPT", "FLUSH")
                let second = try connection.pipelineScript(Self.charge, calls: calls)
                #expect(second.first == .integer(202))
                #expect(second.last == .integer(400))
                #expect(try connection.send("GET", "tg:{k2}:calls").int == 400)
            }
        }
    }

    @Test("a mixed pipeline runs scripts and commands in one trip, reloads flushed scripts, and returns error replies")
    func mixedPipeline() throws {
        // Fresh scripts (no SHA remembered from another test's server): loaded before the first trip.
        let charge = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        let append = RedisScript("return redis.call('APPEND', KEYS[1], ARGV[1])")
        try withRedisServer { server in
            try server.withConnection { connection in
                let steps: [RedisPipelineStep] = [
                    .script(charge, RedisScriptCall(keys: ["tg:{k3}:calls"], args: [3])),
                    .script(append, RedisScriptCall(keys: ["tg:{k3}:log"], args: ["a"])),
                    .command(["GET", "tg:{k3}:calls"]),
                    .command(["INCR", "tg:{k3}:log"]),  // not an integer: an error reply, returned
                ]
                let first = try connection.pipeline(steps)
                #expect(first[0] == .integer(3))
                #expect(first[1] == .integer(1))
                #expect(first[2].string == "3")
                #expect(first[3].errorMessage != nil)
                try connection.send("SCRIPT", "FLUSH")
                // Both scripts are refused, reloaded and sent again, once each; the commands are not re-sent.
                let second = try connection.pipeline(steps)
                #expect(second[0] == .integer(6))
                #expect(second[1] == .integer(2))
                #expect(second[2].string == "3")  // read before the retried script ran
                #expect(try connection.send("GET", "tg:{k3}:calls").int == 6)
                #expect(try connection.send("GET", "tg:{k3}:log").string == "aa")
            }
        }
    }

    @Test("a script's own error is thrown as a reply error and not retried")
    func scriptError() throws {
        let failing = RedisScript("return redis.error_reply('TG quota exceeded')")
        try withRedisServer { server in
            try server.withConnection { connection in
                let error = #expect(throws: RedisError.self) { try connection.evalScript(failing) }
                #expect(error?.code == .replyError)
                #expect(error?.message == "TG quota exceeded")
                #expect(error?.command == "EVALSHA")
            }
        }
    }
}
