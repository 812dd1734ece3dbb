import ArgumentParser
import Foundation
import TollgateCollector
import TollgateCore
import TollgateRedis
import TollgateSidecar
import TollgateStore

/// `tollgate-bench ingest`: usage events end to end, recorder → uplink → collector → Redis, in one process.
///
/// Starts a `CollectorIngest` (ROUTER on a free loopback port) against the given redis-server and an
/// `Uplink` + `UplinkRecorder` connected to it, records `--events` events over `--keys` fresh key ids
/// from dedicated producer threads, stops the uplink (final flush, drain of acks, bounded by
/// `--timeout`), and checks in Redis that every counter the events added is there exactly.
/// The figure is events / (first record → last ack).
struct IngestBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Measure usage events/s from UplinkRecorder.record to the collector's ack, verified in Redis."
    )

    /// The spool's fsync policy, as a command-line choice.
    enum Fsync: String, CaseIterable, ExpressibleByArgument {
        case never, interval, always
    }

    @Option(help: "Redis host.")
    var redisHost = "127.0.0.1"

    @Option(help: "Redis port.")
    var redisPort: Int

    @Option(help: "Usage events to record.")
    var events = 1_000_000

    @Option(help: "Distinct API keys the events spread over.")
    var keys = 1_000

    @Flag(help: "One aggregate per event instead of one per (key, feature, period) per batch.")
    var noAggregate = false

    @Option(help: "Spool fsync policy: never, interval or always.")
    var fsync: Fsync = .interval

    @Option(help: "Milliseconds between fsyncs with --fsync interval.")
    var fsyncIntervalMs = 100

    @Option(help: "How each event's key is picked: uniform (seeded random) or round-robin.")
    var distribution: KeyDistribution = .uniform

    @Option(help: "Aggregates per batch at most (the recorder's maxAggregatesPerBatch).")
    var maxAggregates = UplinkRecorder.Options().maxAggregatesPerBatch

    @Option(help: "Milliseconds after its first event a batch closes (the recorder's flushInterval).")
    var flushMs = 10

    @Option(help: "Milliseconds a batch may stay open while the uplink is backlogged (the recorder's backlogFlushInterval).")
    var backlogFlushMs = Int(UplinkRecorder.Options().backlogFlushInterval.components.seconds * 1_000
        + UplinkRecorder.Options().backlogFlushInterval.components.attoseconds / 1_000_000_000_000_000)

    @Option(help: "Producer threads recording events.")
    var producers = 1

    @Option(help: "Seconds to wait, at most, for every batch to be acknowledged.")
    var timeout = 120

    @Option(help: "Seed of the key choice.")
    var seed: UInt64 = 1

    func validate() throws {
        guard self.events > 0, self.keys > 0, self.producers > 0, self.timeout > 0, self.flushMs > 0, self.maxAggregates > 0,
              self.backlogFlushMs >= self.flushMs
        else {
            throw ValidationError("--events, --keys, --producers, --timeout, --flush-ms and --max-aggregates must be positive, --backlog-flush-ms at least --flush-ms")
        }
    }

    func run() async throws {
        let redis = RedisConfiguration(host: self.redisHost, port: self.redisPort)
        let probe = try RedisConnection(configuration: redis)
        defer { probe.close() }
        let workload = IngestWorkload(
            keyIDs: IngestWorkload.makeKeyIDs(count: self.keys), distribution: self.distribution,
            at: WallClock().now(), seed: self.seed
        )
        let (ingest, endpoint) = try await Self.startCollector(redis: redis)
        let spoolDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tollgate-bench-ingest-\(UInt32.random(in: 0 ... .max))").path
        defer { try? FileManager.default.removeItem(atPath: spoolDirectory) }
        let measured: Measurement
        do {
            measured = try await self.measure(workload, endpoint: endpoint, spoolDirectory: spoolDirectory, probe: probe)
        } catch {
            ingest.requestStop()
            try? await ingest.join()
            throw error
        }
        ingest.requestStop()
        try await ingest.join()
        try self.verify(workload, expected: measured.produced.totals, probe: probe)
        self.report(measured)
    }

    /// Starts the collector on a free port, trying another if the port was taken meanwhile.
    private static func startCollector(redis: RedisConfiguration) async throws -> (CollectorIngest, String) {
        var lastError: (any Error)?
        for _ in 0..<5 {
            let endpoint = "tcp://127.0.0.1:\(try FreePort.make())"
            let configuration = CollectorIngestConfiguration(collectorID: "bench-collector", routerBind: endpoint, redis: redis)
            do {
                let ingest = try await ThreadName.whileNamed("tg-collector") {
                    try await CollectorIngest.start(
                        configuration: configuration, fleet: FleetTable(), logger: .init(label: "tollgate-bench.collector")
                    )
                }
                return (ingest, endpoint)
            } catch {
                lastError = error
            }
        }
        throw ValidationError("could not start the collector: \(lastError.map { "\($0)" } ?? "?")")
    }
}
