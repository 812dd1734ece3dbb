import Metrics
import TollgateCore

/// The proxy's metric names, in one place, and the metric objects made once per server.
///
/// Threading: the swift-metrics handles are thread-safe; they are created once so the hot path
/// only increments.
struct ProxyMetrics: Sendable {
    /// Responses sent to clients, by status class (`class` dimension).
    static let requests = "tollgate_sidecar_proxy_requests_total"
    /// Upstream failures by kind (`kind`: connect, timeout, closed).
    static let upstreamErrors = "tollgate_sidecar_proxy_upstream_errors_total"
    /// Requests refused by the proxy itself (`reason`: malformed, header_too_large, body_too_large, missing_key, unknown_key, key_lookup_timeout).
    static let badRequests = "tollgate_sidecar_proxy_refused_total"
    /// `Tollgate-Units` headers that did not parse and were ignored.
    static let unitsParseErrors = "tollgate_sidecar_proxy_units_parse_errors_total"
    /// Requests between head received and response end.
    static let inFlight = "tollgate_sidecar_proxy_in_flight_requests"

    let requestsByClass: [Counter]
    let upstreamConnectErrors = Counter(label: Self.upstreamErrors, dimensions: [("kind", "connect")])
    let upstreamTimeouts = Counter(label: Self.upstreamErrors, dimensions: [("kind", "timeout")])
    let upstreamClosed = Counter(label: Self.upstreamErrors, dimensions: [("kind", "closed")])
    let refusedByReason: [RefusalReason: Counter]
    let unitsParseErrors = Counter(label: Self.unitsParseErrors)
    let inFlight = Meter(label: Self.inFlight)
    /// Paid calls by outcome (`outcome`: refused, settled, settlement_failed, released, replayed).
    static let payments = "tollgate_sidecar_paid_calls_total"
    let paymentsByOutcome: [PaymentOutcome: Counter]

    init() {
        self.paymentsByOutcome = Dictionary(uniqueKeysWithValues: PaymentOutcome.allCases.map {
            ($0, Counter(label: Self.payments, dimensions: [("outcome", $0.rawValue)]))
        })
        self.requestsByClass = StatusClass.allCases.map { Counter(label: Self.requests, dimensions: [("class", $0.rawValue)]) }
        var refused: [RefusalReason: Counter] = [:]
        for reason in RefusalReason.allCases {
            refused[reason] = Counter(label: Self.badRequests, dimensions: [("reason", reason.rawValue)])
        }
        self.refusedByReason = refused
    }

    func countResponse(_ statusClass: StatusClass) {
        let index: Int
        switch statusClass {
        case .informational: index = 0
        case .success: index = 1
        case .redirection: index = 2
        case .clientError: index = 3
        case .serverError: index = 4
        }
        self.requestsByClass[index].increment()
    }

    /// What happened to a paid call.
    enum PaymentOutcome: String, CaseIterable {
        case refused, settled, settlementFailed = "settlement_failed", released
        /// A retry with a settled payment-identifier id: the kept response was sent again.
        case replayed
    }

    func countPayment(_ outcome: PaymentOutcome) {
        self.paymentsByOutcome[outcome]?.increment()
    }

    func countRefusal(_ reason: RefusalReason) {
        self.refusedByReason[reason]?.increment()
    }
}

/// Why the proxy itself answered instead of the upstream.
enum RefusalReason: String, CaseIterable, Sendable {
    case malformed
    case headerTooLarge = "header_too_large"
    case bodyTooLarge = "body_too_large"
    case missingKey = "missing_key"
    case unknownKey = "unknown_key"
    case keyLookupTimeout = "key_lookup_timeout"
    case quotaExhausted = "quota_exhausted"
    case rateLimited = "rate_limited"
    case paymentRequired = "payment_required"
    case forbidden
    case collectorUnreachable = "collector_unreachable"
    /// 409: a payment-identifier id used with another payment.
    case paymentIdentifierConflict = "payment_identifier_conflict"
    /// 409: a payment-identifier id whose first attempt is still being processed.
    case paymentInProgress = "payment_in_progress"
    /// 409: a payment-identifier id that settled with a response too large to keep.
    case paymentResponseNotKept = "payment_response_not_kept"
}
