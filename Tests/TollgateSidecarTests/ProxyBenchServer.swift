import Foundation
import NIOCore
import Synchronization
import Testing
import TollgateConfig
import TollgateCore
import TollgateSidecar

/// Not a test: the server side of scripts/bench-proxy.sh, run from the release test bundle because
/// `tollgate-bench` cannot link TollgateSidecar yet. Skipped unless `TOLLGATE_BENCH_ROLE` is set.
///
/// - `TOLLGATE_BENCH_ROLE=upstream`: a DemoUpstream on `TOLLGATE_BENCH_PORT`.
/// - `TOLLGATE_BENCH_ROLE=proxy`: a ProxyServer on `TOLLGATE_BENCH_PORT` in front of
///   `TOLLGATE_BENCH_UPSTREAM_PORT`, key `TOLLGATE_BENCH_KEY` known, metering into a counting recorder.
///
/// Both serve until `TOLLGATE_BENCH_STOP_FILE` exists (or `TOLLGATE_BENCH_MAX_SECONDS`, default 900).
@Suite("Benchmark server (scripts/bench-proxy.sh)")
struct ProxyBenchServer {
    static let environment = ProcessInfo.processInfo.environment

    @Test(.enabled(if: environment["TOLLGATE_BENCH_ROLE"] != nil))
    func serveForBenchmark() async throws {
        let env = Self.environment
        let role = env["TOLLGATE_BENCH_ROLE"] ?? ""
        let port = Int(env["TOLLGATE_BENCH_PORT"] ?? "") ?? 0
        let stopFile = env["TOLLGATE_BENCH_STOP_FILE"] ?? "/tmp/tollgate-bench-stop"
        let maxSeconds = Int(env["TOLLGATE_BENCH_MAX_SECONDS"] ?? "") ?? 900
        switch role {
        case "upstream":
            let upstream = DemoUpstream(threads: Int(env["TOLLGATE_BENCH_THREADS"] ?? "") ?? 1)
            let bound = try await upstream.start(host: "127.0.0.1", port: port)
            print("bench-server role=upstream port=\(bound)")
            await Self.waitForStop(stopFile, maxSeconds: maxSeconds)
            await upstream.shutdown()
        case "proxy":
            var configuration = ProxyConfiguration()
            configuration.listenPort = port
            configuration.upstreamPort = Int(env["TOLLGATE_BENCH_UPSTREAM_PORT"] ?? "") ?? 9000
            if let threads = Int(env["TOLLGATE_BENCH_THREADS"] ?? "") { configuration.eventLoopThreads = threads }
            let key = env["TOLLGATE_BENCH_KEY"] ?? "tg_bench_key"
            let resolver = InMemoryPrincipalResolver(plansByKeyID: [APIKeyHasher.keyID(for: key): "bench"])
            let recorder = CountingUsageRecorder()
            let proxy = ProxyServer(configuration: configuration, resolver: resolver, recorder: recorder)
            let bound = try await proxy.start()
            print("bench-server role=proxy port=\(bound) threads=\(configuration.eventLoopThreads)")
            await Self.waitForStop(stopFile, maxSeconds: maxSeconds)
            await proxy.shutdown()
            print("bench-server role=proxy metered_events=\(recorder.events) metered_units=\(recorder.units)")
        default:
            Issue.record("TOLLGATE_BENCH_ROLE must be upstream or proxy, got \(role)")
        }
    }

    /// Polls for the stop file: the script's signal that the run is over.
    static func waitForStop(_ path: String, maxSeconds: Int) async {
        let deadline = ContinuousClock.now + .seconds(maxSeconds)
        while !FileManager.default.fileExists(atPath: path), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// Counts events with one relaxed atomic add per field: what metering costs at minimum.
final class CountingUsageRecorder: UsageRecorder {
    private let eventCount = Atomic<Int>(0)
    private let unitCount = Atomic<Int>(0)

    func record(_ event: UsageEvent, extraUnits: [String: UInt64]) {
        self.eventCount.add(1, ordering: .relaxed)
        self.unitCount.add(Int(truncatingIfNeeded: event.units), ordering: .relaxed)
    }

    var events: Int { self.eventCount.load(ordering: .relaxed) }
    var units: Int { self.unitCount.load(ordering: .relaxed) }
}
