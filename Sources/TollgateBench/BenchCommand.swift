import ArgumentParser

/// `tollgate-bench`: throughput benchmarks that print figures for scripts to set beside a reference.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate-bench",
        abstract: "Tollgate benchmarks. Each prints `key=value` lines; scripts/bench-*.sh compare them with a reference.",
        subcommands: [RedisIncrBenchmark.self]
    )
}
