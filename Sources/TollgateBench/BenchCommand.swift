import ArgumentParser

/// `tollgate-bench` (the entry point): throughput benchmarks that print figures for scripts to set beside a reference.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate-bench",
        abstract: "Tollgate benchmarks. Each prints `key=value` lines; scripts/bench-*.sh compare them with a reference.",
        subcommands: [RedisIncrBenchmark.self, IngestBenchmark.self, DecisionBenchmark.self]
    )
}
