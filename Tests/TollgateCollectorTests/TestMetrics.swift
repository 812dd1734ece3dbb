import CoreMetrics
import Foundation

/// A metrics backend that keeps counter totals and the last recorded values, for assertions.
///
/// Bootstrapped once per test process (`TestMetrics.shared`); counters are process-wide, so tests
/// compare differences, and suites that check them run serialized.
// @unchecked Sendable: `values` is only touched under `lock`.
final class TestMetrics: MetricsFactory, @unchecked Sendable {
    static let shared: TestMetrics = {
        let metrics = TestMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()

    private let lock = NSLock()
    private var values: [String: Double] = [:]

    /// The current value of the metric `label` with exactly `dimensions` (0 if never touched).
    func value(_ label: String, _ dimensions: [(String, String)] = []) -> Double {
        self.lock.withLock { self.values[Self.key(label, dimensions)] ?? 0 }
    }

    fileprivate func add(_ key: String, _ amount: Double) {
        self.lock.withLock { self.values[key, default: 0] += amount }
    }

    fileprivate func set(_ key: String, _ value: Double) {
        self.lock.withLock { self.values[key] = value }
    }

    static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: "|")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        Handler(metrics: self, key: Self.key(label, dimensions))
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        Handler(metrics: self, key: Self.key(label, dimensions))
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        Handler(metrics: self, key: Self.key(label, dimensions))
    }

    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}

    private final class Handler: CounterHandler, RecorderHandler, TimerHandler, Sendable {
        let metrics: TestMetrics
        let key: String

        init(metrics: TestMetrics, key: String) {
            self.metrics = metrics
            self.key = key
        }

        func increment(by amount: Int64) { self.metrics.add(self.key, Double(amount)) }
        func reset() { self.metrics.set(self.key, 0) }
        func record(_ value: Int64) { self.metrics.set(self.key, Double(value)) }
        func record(_ value: Double) { self.metrics.set(self.key, value) }
        func recordNanoseconds(_ duration: Int64) { self.metrics.add(self.key + "|count", 1) }
    }
}
