import Metrics

/// Metric names of the collector's sinks, in one place.
public enum SinkMetricName {
    /// Counter of events handed to every sink, label `kind` (`batch`, `settlement`).
    public static let delivered = "tollgate_collector_sink_events_total"
    /// Counter of events no sink saw, label `reason` (`queue_full`, `stopped`).
    public static let dropped = "tollgate_collector_sink_dropped_total"
    /// Gauge of events the sink thread took in its last pass (0 when idle).
    public static let queueDepth = "tollgate_collector_sink_queue_depth"
    /// Counter of audit log lines written, label `type` (`batch`, `settlement`).
    public static let auditLines = "tollgate_collector_audit_lines_total"
    /// Counter of audit lines that could not be written (disk full, file unwritable).
    public static let auditErrors = "tollgate_collector_audit_write_errors_total"
    /// Counter of audit log rotations.
    public static let auditRotations = "tollgate_collector_audit_rotations_total"
    /// Counter of meter events Stripe accepted, label `event_name`.
    public static let stripeEvents = "tollgate_collector_stripe_events_sent_total"
    /// Counter of units in meter events Stripe accepted, label `event_name`.
    public static let stripeUnits = "tollgate_collector_stripe_units_sent_total"
    /// Counter of retried requests, label `status` (`429`, `500`, ..., `network`).
    public static let stripeRetries = "tollgate_collector_stripe_retries_total"
    /// Counter of deltas left pending for a later pass, label `reason` (`rejected` for a 4xx, `retries_exhausted`, `redis`).
    public static let stripeFailures = "tollgate_collector_stripe_failures_total"
    /// Counter of pending ranges sent again (after a restart, a lost answer, or another collector's claim expired).
    public static let stripeResends = "tollgate_collector_stripe_resends_total"
    /// Counter of counters not sent because their key has no Stripe customer.
    public static let stripeSkipped = "tollgate_collector_stripe_skipped_total"
    /// Gauge of pending ranges this collector knows of (written to Redis, not yet acknowledged by Stripe).
    public static let stripePending = "tollgate_collector_stripe_pending_ranges"
    /// Gauge of units counted in Redis but not yet acknowledged by Stripe, as of each cursor's last claim.
    public static let stripeLag = "tollgate_collector_stripe_lag_units"
}

/// The fan-out's metric objects.
struct SinkMetrics: Sendable {
    let droppedFull = Counter(label: SinkMetricName.dropped, dimensions: [("reason", "queue_full")])
    let droppedStopped = Counter(label: SinkMetricName.dropped, dimensions: [("reason", "stopped")])
    let queueDepth = Gauge(label: SinkMetricName.queueDepth)
    let batches = Counter(label: SinkMetricName.delivered, dimensions: [("kind", "batch")])
    let settlements = Counter(label: SinkMetricName.delivered, dimensions: [("kind", "settlement")])

    func delivered(_ event: SinkEvent) {
        switch event {
        case .applied: self.batches.increment()
        case .settled: self.settlements.increment()
        }
    }
}
