import Metrics

/// Metric names of TollgateStore, in one place.
public enum StoreMetricName {
    /// Timer (histogram) of Redis round trips, label `op` (`apply_batch`, `usage`, `registry_load`, `registry_lookup`).
    public static let redisSeconds = "tollgate_collector_redis_seconds"
    /// Counter of aggregates written, label `result` (`applied`, `duplicate`).
    public static let aggregates = "tollgate_collector_aggregates_total"
}

/// The metric objects the store records to; made once, after the metrics backend is bootstrapped.
struct StoreMetrics: Sendable {
    let applyTimer = Timer(label: StoreMetricName.redisSeconds, dimensions: [("op", "apply_batch")])
    let usageTimer = Timer(label: StoreMetricName.redisSeconds, dimensions: [("op", "usage")])
    let registryLoadTimer = Timer(label: StoreMetricName.redisSeconds, dimensions: [("op", "registry_load")])
    let registryLookupTimer = Timer(label: StoreMetricName.redisSeconds, dimensions: [("op", "registry_lookup")])
    let aggregatesApplied = Counter(label: StoreMetricName.aggregates, dimensions: [("result", "applied")])
    let aggregatesDuplicate = Counter(label: StoreMetricName.aggregates, dimensions: [("result", "duplicate")])

    /// Runs `body` and records its duration in `timer`, whether it throws or not.
    func timed<T, E: Error>(_ timer: Timer, _ body: () throws(E) -> T) throws(E) -> T {
        let start = ContinuousClock.now
        defer { timer.recordNanoseconds((ContinuousClock.now - start).nanosecondsClamped) }
        return try body()
    }
}

extension Duration {
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = self.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}
