import ArgumentParser
import TollgateRedis

/// `tollgate-bench redis-incr`: INCRBY throughput through `RedisConnection`, unpipelined and pipelined.
///
/// One connection, like `redis-benchmark -c 1`; scripts/bench-redis.sh runs it beside redis-benchmark.
struct RedisIncrBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis-incr",
        abstract: "Measure INCRBY ops/s through the TollgateRedis wrapper on one connection."
    )

    @Option(help: "Redis host.")
    var host = "127.0.0.1"

    @Option(help: "Redis port.")
    var port: Int

    @Option(help: "INCRBY commands per mode.")
    var count = 200_000

    @Option(help: "Pipeline depths to measure, comma separated; 1 means one command per round trip.")
    var depths = "1,16,1000"

    func run() throws {
        let depths = self.depths.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
        let connection = try RedisConnection(configuration: .init(host: self.host, port: self.port))
        defer { connection.close() }
        let key: RedisArgument = "tollgate-bench:incr"

        for depth in depths {
            try connection.send("DEL", key)
            _ = try self.measure(connection, key: key, depth: depth, count: min(self.count, 10_000))  // warm-up
            try connection.send("DEL", key)
            let seconds = try self.measure(connection, key: key, depth: depth, count: self.count)
            let total = try connection.send("GET", key).int ?? -1
            guard total == Int64(self.count) else {
                throw ValidationError("depth \(depth): expected the counter at \(self.count), found \(total)")
            }
            let mode = depth == 1 ? "unpipelined" : "pipeline-\(depth)"
            print("redis-incr mode=\(mode) depth=\(depth) count=\(self.count) seconds=\(fixed(seconds, 3)) ops_per_sec=\(fixed(Double(self.count) / seconds, 0))")
        }
    }

    /// Runs `count` INCRBY in batches of `depth` (the last batch may be shorter); returns the elapsed seconds.
    private func measure(_ connection: RedisConnection, key: RedisArgument, depth: Int, count: Int) throws -> Double {
        let command: [RedisArgument] = ["INCRBY", key, 1]
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            if depth == 1 {
                for _ in 0..<count {
                    _ = try connection.send(command)
                }
                return
            }
            var remaining = count
            while remaining > 0 {
                let batch = min(depth, remaining)
                for _ in 0..<batch {
                    try connection.append(command)
                }
                for _ in 0..<batch {
                    if case .error(let message) = try connection.readReply() {
                        throw RedisError(replyError: message, command: "INCRBY")
                    }
                }
                remaining -= batch
            }
        }
        return elapsed.inSeconds
    }
}
