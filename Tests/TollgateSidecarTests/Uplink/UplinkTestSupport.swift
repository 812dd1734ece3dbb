import Foundation
import Metrics
import TollgateSidecar
import TollgateWire

/// Runs `body` with a fresh temporary directory, removed afterwards.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = NSTemporaryDirectory() + "tollgate-uplink-\(UInt64.random(in: 0 ... .max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// The serialized envelope of a batch holding one aggregate of `calls` calls for `key`.
func batchEnvelope(_ id: BatchID, key: String = "k", calls: UInt64 = 1, sidecar: String = "test") throws -> [UInt8] {
    var aggregate = Tollgate_V1_UsageAggregate()
    aggregate.keyID = key
    aggregate.feature = "api_call"
    aggregate.periodID = "d20260101"
    aggregate.calls = calls
    aggregate.units = calls
    var batch = Tollgate_V1_UsageBatch()
    batch.sidecarID = sidecar
    batch.bootEpoch = id.epoch
    batch.sequence = id.sequence
    batch.aggregates = [aggregate]
    return try WireCodec().encode(.usageBatch(batch), correlationID: id.sequence)
}

/// The size of a file.
func fileSize(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
}

/// A point in time `seconds` from now, for bounding waits.
func deadline(seconds: Double) -> ContinuousClock.Instant {
    .now + .milliseconds(Int(seconds * 1000))
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass; returns whether it held.
func eventually(within seconds: Double = 10, _ condition: () throws -> Bool) async throws -> Bool {
    let end = deadline(seconds: seconds)
    while ContinuousClock.now < end {
        if try condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try condition()
}

/// A metrics backend for one test: counters and gauges by label and dimensions.
final class TestMetrics: MetricsFactory, @unchecked Sendable {
    // @unchecked Sendable: every stored value is guarded by `lock`.
    private let lock = NSLock()
    private var values: [String: Int64] = [:]

    private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: ",")
    }

    /// The value of a counter or gauge (0 when never touched).
    func value(_ label: String, _ dimensions: [(String, String)] = []) -> Int64 {
        lock.withLock { values[Self.key(label, dimensions)] ?? 0 }
    }

    fileprivate func add(_ key: String, _ amount: Int64) { lock.withLock { values[key, default: 0] += amount } }
    fileprivate func set(_ key: String, _ amount: Int64) { lock.withLock { values[key] = amount } }

    private final class Handler: CounterHandler, RecorderHandler, FloatingPointCounterHandler, TimerHandler, MeterHandler, @unchecked Sendable {
        // @unchecked Sendable: immutable; the factory it writes to is locked.
        let factory: TestMetrics
        let key: String
        init(_ factory: TestMetrics, _ key: String) { self.factory = factory; self.key = key }
        func increment(by amount: Int64) { factory.add(key, amount) }
        func increment(by amount: Double) { factory.add(key, Int64(amount)) }
        func decrement(by amount: Double) { factory.add(key, -Int64(amount)) }
        func reset() { factory.set(key, 0) }
        func record(_ value: Int64) { factory.set(key, value) }
        func record(_ value: Double) { factory.set(key, Int64(value)) }
        func recordNanoseconds(_ duration: Int64) { factory.set(key, duration) }
        func set(_ value: Int64) { factory.set(key, value) }
        func set(_ value: Double) { factory.set(key, Int64(value)) }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { Handler(self, Self.key(label, dimensions)) }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        Handler(self, Self.key(label, dimensions))
    }
    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler { Handler(self, Self.key(label, dimensions)) }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        Handler(self, Self.key(label, dimensions))
    }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { Handler(self, Self.key(label, dimensions)) }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
