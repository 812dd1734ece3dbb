import Metrics

/// Decisions counted by verdict under the gate's lock, until they are reported to swift-metrics.
///
/// Counting is an add to a plain integer inside the lock the decision already holds; the
/// swift-metrics counters (a call through the backend, an atomic or a lock of its own each) are
/// touched once per batch instead of once per decision.
///
/// Threading: a value inside `GateState`, only touched under the gate's lock.
struct DecisionCounts {
    var admitted: UInt64 = 0
    var admittedUnreachable: UInt64 = 0
    var quotaExhausted: UInt64 = 0
    var rateLimited: UInt64 = 0
    var paymentRequired: UInt64 = 0
    var forbidden: UInt64 = 0
    var unreachable: UInt64 = 0
    /// Decisions counted since the last report.
    var pending: UInt32 = 0

    /// Report after this many decisions even if no timer asked.
    static let batch: UInt32 = 512

    @inline(__always)
    mutating func count(_ verdict: GateVerdict) {
        switch verdict {
        case .admit(let admission):
            if admission.unreachable { admittedUnreachable &+= 1 } else { admitted &+= 1 }
        case .refuse(let refusal):
            switch refusal.reason {
            case .quotaExhausted: quotaExhausted &+= 1
            case .rateLimited: rateLimited &+= 1
            case .paymentRequired: paymentRequired &+= 1
            case .forbidden: forbidden &+= 1
            case .collectorUnreachable: unreachable &+= 1
            }
        }
        pending &+= 1
    }

    /// The counts so far, zeroing them.
    mutating func take() -> DecisionCounts {
        defer { self = DecisionCounts() }
        return self
    }

    /// The counts so far when a batch is full (zeroing them), else nil.
    @inline(__always)
    mutating func takeIfDue() -> DecisionCounts? {
        pending >= Self.batch ? take() : nil
    }
}

/// The gate's metrics.
struct QuotaGateMetrics: Sendable {
    let admitted = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "admitted")])
    let admittedUnreachable = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "admitted_unreachable")])
    let quotaExhausted = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "quota_exhausted")])
    let rateLimited = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "rate_limited")])
    let paymentRequired = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "payment_required")])
    let forbidden = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "forbidden")])
    let unreachable = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "collector_unreachable")])
    let waited = Counter(label: QuotaGateMetricName.roundTrips)
    let leaseRequests = Counter(label: QuotaGateMetricName.leaseRequests)
    let leaseFailures = Counter(label: QuotaGateMetricName.leaseFailures)
    let leaseUnits = Counter(label: QuotaGateMetricName.leaseUnits)
    let staleGrants = Counter(label: QuotaGateMetricName.staleGrants)
    let updatesApplied = Counter(label: QuotaGateMetricName.updates, dimensions: [("result", "applied")])
    let updatesStale = Counter(label: QuotaGateMetricName.updates, dimensions: [("result", "stale")])

    /// Adds a batch of decision counts to the counters.
    func report(_ counts: DecisionCounts) {
        guard counts.pending > 0 else { return }
        for (counter, value) in [
            (admitted, counts.admitted), (admittedUnreachable, counts.admittedUnreachable),
            (quotaExhausted, counts.quotaExhausted), (rateLimited, counts.rateLimited),
            (paymentRequired, counts.paymentRequired), (forbidden, counts.forbidden), (unreachable, counts.unreachable),
        ] where value > 0 {
            counter.increment(by: Int(clamping: value))
        }
    }

    func updates(applied: Bool) {
        (applied ? updatesApplied : updatesStale).increment()
    }
}

/// Metric names of the quota gate.
public enum QuotaGateMetricName {
    /// Counter of decisions, label `verdict` (reported in batches: at most 100 ms behind).
    public static let decisions = "tollgate_sidecar_quota_decisions_total"
    /// Counter of decisions that waited for a collector round trip.
    public static let roundTrips = "tollgate_sidecar_quota_round_trips_total"
    /// Counter of lease requests sent.
    public static let leaseRequests = "tollgate_sidecar_lease_requests_total"
    /// Counter of lease requests that failed (timeout, error reply).
    public static let leaseFailures = "tollgate_sidecar_lease_request_failures_total"
    /// Counter of units granted to this sidecar.
    public static let leaseUnits = "tollgate_sidecar_lease_units_granted_total"
    /// Counter of grants answered after a pushed change dropped a key's state: their units went back unused and the request went out again.
    public static let staleGrants = "tollgate_sidecar_lease_grants_stale_total"
    /// Counter of pushed updates, label `result` (`applied`, `stale`).
    public static let updates = "tollgate_sidecar_quota_updates_total"
}
