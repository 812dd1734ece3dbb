import Metrics

/// Every metric the uplink and its spool report, named in one place.
///
/// Threading: the swift-metrics handles are thread-safe; share this value freely.
public struct UplinkMetrics: Sendable {
    /// The metric names.
    public enum Name {
        /// Batches sent for the first time.
        public static let batchesSent = "tollgate_uplink_batches_sent_total"
        /// Re-sends of a batch that was not acknowledged in time.
        public static let batchesRetried = "tollgate_uplink_batches_retried_total"
        /// Batches acknowledged (dimension `outcome`: `applied` or `duplicate`).
        public static let batchesAcked = "tollgate_uplink_batches_acked_total"
        /// Batches the collector rejected; each is kept in the dead-letter file.
        public static let batchesRejected = "tollgate_uplink_batches_rejected_total"
        /// Calls inside rejected batches, so a rejection's weight is visible.
        public static let callsRejected = "tollgate_uplink_calls_rejected_total"
        /// Usage events refused because the spool was full (the proxy should have failed closed).
        public static let eventsRefused = "tollgate_uplink_events_refused_total"
        /// Incoming frames that did not decode or were not for this sidecar.
        public static let framesDropped = "tollgate_uplink_frames_dropped_total"
        /// 1 while a collector answered within the last few heartbeat intervals, else 0.
        public static let connected = "tollgate_uplink_connected"
        /// Batches spooled but not yet acknowledged.
        public static let unackedBatches = "tollgate_uplink_unacked_batches"
        /// Bytes in live spool segments.
        public static let spoolBytes = "tollgate_spool_bytes"
        /// Records in live spool segments.
        public static let spoolRecords = "tollgate_spool_records"
        /// 1 while the spool refuses appends, else 0.
        public static let spoolFull = "tollgate_spool_full"
        /// Damaged records truncated away at replay (dimension `reason`: `torn` or `corrupt`).
        public static let spoolTruncated = "tollgate_spool_truncated_records_total"
        /// Records written to the dead-letter file.
        public static let deadLetters = "tollgate_spool_dead_letters_total"
    }

    let batchesSent: Counter
    let batchesRetried: Counter
    let batchesApplied: Counter
    let batchesDuplicate: Counter
    let batchesRejected: Counter
    let callsRejected: Counter
    let eventsRefused: Counter
    let framesDropped: Counter
    let connected: Gauge
    let unackedBatches: Gauge
    let spoolBytes: Gauge
    let spoolRecords: Gauge
    let spoolFull: Gauge
    let spoolTorn: Counter
    let spoolCorrupt: Counter
    let deadLetters: Counter

    /// Creates the metrics through `factory` (the global one by default), each with `dimensions`.
    public init(factory: any MetricsFactory = MetricsSystem.factory, dimensions: [(String, String)] = []) {
        func counter(_ label: String, _ extra: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions + extra, factory: factory)
        }
        func gauge(_ label: String) -> Gauge {
            Gauge(label: label, dimensions: dimensions, factory: factory)
        }
        batchesSent = counter(Name.batchesSent)
        batchesRetried = counter(Name.batchesRetried)
        batchesApplied = counter(Name.batchesAcked, [("outcome", "applied")])
        batchesDuplicate = counter(Name.batchesAcked, [("outcome", "duplicate")])
        batchesRejected = counter(Name.batchesRejected)
        callsRejected = counter(Name.callsRejected)
        eventsRefused = counter(Name.eventsRefused)
        framesDropped = counter(Name.framesDropped)
        connected = gauge(Name.connected)
        unackedBatches = gauge(Name.unackedBatches)
        spoolBytes = gauge(Name.spoolBytes)
        spoolRecords = gauge(Name.spoolRecords)
        spoolFull = gauge(Name.spoolFull)
        spoolTorn = counter(Name.spoolTruncated, [("reason", "torn")])
        spoolCorrupt = counter(Name.spoolTruncated, [("reason", "corrupt")])
        deadLetters = counter(Name.deadLetters)
    }
}
