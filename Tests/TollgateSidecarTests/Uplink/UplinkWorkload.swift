import TollgateCore
import TollgateSidecar
import TollgateTestSupport

/// Deterministic usage for uplink tests: event `i` of 20 keys, with units, statuses, bytes and tokens.
enum Workload {
    static let at = Timestamp(seconds: 1_790_000_000)
    static let period = ResetInterval.day.period(containing: at).id
    static let keyCount = 20

    static func event(_ i: Int) -> (UsageEvent, [String: UInt64]) {
        let event = UsageEvent(
            key: "key-\(i % keyCount)", units: UInt64(1 + i % 3), statusClass: i % 7 == 0 ? .serverError : .success,
            latency: .microseconds(100 + i % 900), requestBytes: UInt64(i % 100), at: at
        )
        return (event, i % 2 == 0 ? ["tokens": UInt64(i % 50)] : [:])
    }

    /// Records events `range` and returns what the collector must end up with for them.
    @discardableResult
    static func record(_ range: Range<Int>, into recorder: UplinkRecorder) -> [String: Tally] {
        var expected: [String: Tally] = [:]
        for i in range {
            let (event, extra) = event(i)
            guard recorder.record(event, extraUnits: extra) == .recorded else { continue }
            add(event, extra, to: &expected)
        }
        return expected
    }

    /// What the collector must hold for events `range`, computed without recording.
    static func expected(_ range: Range<Int>) -> [String: Tally] {
        var expected: [String: Tally] = [:]
        for i in range {
            let (event, extra) = event(i)
            add(event, extra, to: &expected)
        }
        return expected
    }

    static func add(_ event: UsageEvent, _ extra: [String: UInt64], to totals: inout [String: Tally]) {
        let key = "\(event.key)/\(event.feature.rawValue)/\(period)"
        var tally = totals[key, default: Tally()]
        tally.calls += 1
        tally.units += event.units
        if event.statusClass == .success { tally.success += 1 } else { tally.serverError += 1 }
        tally.requestBytes += event.requestBytes
        tally.extra.merge(extra, uniquingKeysWith: +)
        totals[key] = tally
    }

    /// Merges two expectations.
    static func merge(_ a: [String: Tally], _ b: [String: Tally]) -> [String: Tally] {
        a.merging(b) { x, y in
            Tally(calls: x.calls + y.calls, units: x.units + y.units, success: x.success + y.success,
                  serverError: x.serverError + y.serverError, requestBytes: x.requestBytes + y.requestBytes,
                  extra: x.extra.merging(y.extra, uniquingKeysWith: +))
        }
    }

    /// A loopback endpoint on a port that was free a moment ago.
    static func endpoint() throws -> String {
        "tcp://127.0.0.1:\(try FreePort.make())"
    }

    /// An uplink with test timings: 100 ms heartbeats, 50 ms first retry, 1 s drain, no fsync.
    static func makeUplink(
        directory: String, endpoints: [String], recorder: UplinkRecorder = UplinkRecorder(),
        metrics: TestMetrics = TestMetrics(), spool: SpoolOptions = SpoolOptions(fsync: .never),
        tweak: (inout UplinkConfiguration) -> Void = { _ in }
    ) throws -> Uplink {
        var configuration = UplinkConfiguration(sidecarID: "sidecar-test", endpoints: endpoints, spoolDirectory: directory)
        configuration.spool = spool
        configuration.heartbeatInterval = .milliseconds(100)
        configuration.retryInitial = .milliseconds(50)
        configuration.retryMax = .milliseconds(400)
        configuration.drainTimeout = .seconds(1)
        tweak(&configuration)
        return try Uplink(configuration: configuration, recorder: recorder, metrics: UplinkMetrics(factory: metrics))
    }
}

/// Runs `body`, then `cleanup` whether or not it threw.
func withCleanup<T>(_ cleanup: () async -> Void, _ body: () async throws -> T) async throws -> T {
    do {
        let result = try await body()
        await cleanup()
        return result
    } catch {
        await cleanup()
        throw error
    }
}
