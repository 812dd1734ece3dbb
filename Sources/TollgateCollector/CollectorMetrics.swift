import Metrics
import TollgateWire

/// Metric names of TollgateCollector, in one place (the store's are in `StoreMetricName`).
public enum CollectorMetricName {
    /// Counter of frames refused before dispatch, label `reason` (a `WireError.Code`, e.g. `malformed`, `badFraming`).
    public static let decodeErrors = "tollgate_collector_decode_errors_total"
    /// Counter of envelopes received, label `kind` (e.g. `usage_batch`).
    public static let messages = "tollgate_collector_messages_total"
    /// Counter of envelopes of a kind the collector does not serve, label `kind`; they are dropped.
    public static let unhandled = "tollgate_collector_unhandled_messages_total"
    /// Counter of usage batches, label `result` (`applied`, `duplicate`, `rejected`, `unavailable`).
    public static let batches = "tollgate_collector_batches_total"
    /// Counter of replies that could not be sent (peer gone or its queue full).
    public static let repliesDropped = "tollgate_collector_replies_dropped_total"
    /// Counter of CURVE handshakes the allow list decided, labels `socket` (`ingest`, `updates`) and `result` (`admitted`, `refused`).
    public static let curveClients = "tollgate_collector_curve_clients_total"
    /// Gauge of sidecars heard from recently.
    public static let connectedSidecars = "tollgate_collector_connected_sidecars"
    /// Counter of lease requests answered, label `result` (`granted`, `exhausted`, `refused`, `unavailable`).
    public static let leaseRequests = "tollgate_collector_lease_requests_total"
    /// Counter of units granted in leases.
    public static let leaseUnitsGranted = "tollgate_collector_lease_units_granted_total"
    /// Counter of units sidecars handed back unused.
    public static let leaseUnitsReturned = "tollgate_collector_lease_units_returned_total"
    /// Counter of quota updates handed to the publisher, label `kind`.
    public static let updatesRaised = "tollgate_collector_updates_raised_total"
    /// Counter of quota updates sent on the PUB socket, label `kind` (`plan_changed`, `key_revoked`, `credited`, ...).
    public static let updatesPublished = "tollgate_collector_updates_published_total"
    /// Counter of quota updates not sent, label `reason` (`queue_full`, `stopped`, `encode`, `would_block`).
    public static let updatesDropped = "tollgate_collector_updates_dropped_total"
    /// Counter of admin API requests, labels `route` (e.g. `keys.plan`) and `status` (the HTTP status code).
    public static let adminRequests = "tollgate_collector_admin_requests_total"
}

/// The metric objects of one ingest loop; made on its thread, after the backend is bootstrapped.
struct CollectorMetrics {
    let decodeErrors: [WireError.Code: Counter] = Dictionary(uniqueKeysWithValues: WireError.Code.allCases.map {
        ($0, Counter(label: CollectorMetricName.decodeErrors, dimensions: [("reason", $0.rawValue)]))
    })
    let batchesApplied = Counter(label: CollectorMetricName.batches, dimensions: [("result", "applied")])
    let batchesDuplicate = Counter(label: CollectorMetricName.batches, dimensions: [("result", "duplicate")])
    let batchesRejected = Counter(label: CollectorMetricName.batches, dimensions: [("result", "rejected")])
    let batchesUnavailable = Counter(label: CollectorMetricName.batches, dimensions: [("result", "unavailable")])
    let repliesDropped = Counter(label: CollectorMetricName.repliesDropped)
    let connectedSidecars = Gauge(label: CollectorMetricName.connectedSidecars)
    let leasesGranted = Counter(label: CollectorMetricName.leaseRequests, dimensions: [("result", "granted")])
    let leasesExhausted = Counter(label: CollectorMetricName.leaseRequests, dimensions: [("result", "exhausted")])
    let leasesRefused = Counter(label: CollectorMetricName.leaseRequests, dimensions: [("result", "refused")])
    let leasesUnavailable = Counter(label: CollectorMetricName.leaseRequests, dimensions: [("result", "unavailable")])
    let leaseUnitsGranted = Counter(label: CollectorMetricName.leaseUnitsGranted)
    let leaseUnitsReturned = Counter(label: CollectorMetricName.leaseUnitsReturned)
    let exhaustedRaised = Counter(label: CollectorMetricName.updatesRaised, dimensions: [("kind", "exhausted")])
    private var messages: [String: Counter] = [:]
    private var unhandled: [String: Counter] = [:]

    mutating func received(_ kind: String) {
        self.counter(&self.messages, CollectorMetricName.messages, kind).increment()
    }

    mutating func unhandled(_ kind: String) {
        self.counter(&self.unhandled, CollectorMetricName.unhandled, kind).increment()
    }

    private func counter(_ cache: inout [String: Counter], _ label: String, _ kind: String) -> Counter {
        if let counter = cache[kind] { return counter }
        let counter = Counter(label: label, dimensions: [("kind", kind)])
        cache[kind] = counter
        return counter
    }
}
