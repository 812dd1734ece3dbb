/// The collector's sinks (`collector.sinks:`): where usage and settlements go once Redis has them.
///
/// Both sinks are off unless their section is present.
/// ```yaml
/// collector:
///   sinks:
///     queue_capacity: 10000
///     audit: {path: /var/lib/tollgate/audit.jsonl, max_bytes: 104857600, files: 5}
///     stripe:
///       secret_key_env: STRIPE_SECRET_KEY
///       meters: {api_call: {event_name: api_calls, overage_event_name: api_call_overage}}
/// ```
public struct SinkSettings: Hashable, Sendable {
    /// Events the hand-off queue between the ingest thread and the sink thread holds; beyond it
    /// events are dropped and counted (`tollgate_collector_sink_dropped_total`). Default 10,000.
    public var queueCapacity: Int = 10_000
    /// The JSONL audit log; nil writes none.
    public var audit: AuditLogSettings?
    /// Stripe meter events; nil sends none.
    public var stripe: StripeSettings?

    /// No sinks.
    public init() {}

    /// Whether any sink is configured.
    public var isEmpty: Bool { self.audit == nil && self.stripe == nil }
}

/// The append-only JSONL audit log (`collector.sinks.audit:`).
public struct AuditLogSettings: Hashable, Sendable {
    /// The file lines are appended to; rotated files are `<path>.1` (newest) to `<path>.<files>`.
    public var path: String
    /// The size past which the file is rotated, bytes; default 100 MiB.
    public var maxBytes: Int = 100 << 20
    /// Rotated files kept besides the current one; default 5.
    public var files: Int = 5

    /// A log at `path` with the default size and count.
    public init(path: String) { self.path = path }
}

/// One metered feature's Stripe meters (`collector.sinks.stripe.meters.<feature>:`).
public struct StripeMeterSettings: Hashable, Sendable {
    /// The meter's `event_name` for successful (2xx) calls of the feature.
    public var eventName: String
    /// A second meter for the feature's overage units; nil sends no overage.
    public var overageEventName: String?

    /// Meters with the given event names.
    public init(eventName: String, overageEventName: String? = nil) {
        self.eventName = eventName
        self.overageEventName = overageEventName
    }
}

/// Stripe meter events (`collector.sinks.stripe:`). `description` never shows the secret key.
public struct StripeSettings: Hashable, Sendable, CustomStringConvertible {
    /// `https://api.stripe.com` by default; `/v1/billing/meter_events` is appended.
    public var baseURL: String = "https://api.stripe.com"
    /// The secret key sent as `Authorization: Bearer`; from `secret_key_env`.
    public var secretKey: String
    /// Meters by feature name; features not listed are not billed through Stripe.
    public var meters: [String: StripeMeterSettings]
    /// Key name or key id → Stripe customer id; a key not listed uses its registry `stripe_customer`.
    public var customers: [String: String] = [:]
    /// Requests per second at most, across this collector's workers; default 100.
    public var maxRequestsPerSecond: Int = 100
    /// Requests in flight at once; default 4.
    public var concurrency: Int = 4
    /// How often dirty counters are flushed, milliseconds; default 1,000.
    public var flushIntervalMs: Int = 1_000
    /// One request's time limit, milliseconds; default 10,000.
    public var timeoutMs: Int = 10_000
    /// Attempts per delta on 429, 5xx and network errors before it waits for a later pass; default 8.
    public var maxAttempts: Int = 8
    /// The first retry delay, milliseconds (doubled per attempt, with jitter); default 200.
    public var retryInitialMs: Int = 200
    /// The largest retry delay, milliseconds; default 30,000.
    public var retryMaxMs: Int = 30_000
    /// How long a collector owns a pending range before another may take it over, ms; default 60,000.
    public var claimTTLMs: Int = 60_000
    /// How often the whole keyspace is rescanned for counters ahead of their cursor, seconds; default 300.
    public var rescanIntervalSeconds: Int = 300

    /// Settings with defaults besides the key and meters.
    public init(secretKey: String, meters: [String: StripeMeterSettings]) {
        self.secretKey = secretKey
        self.meters = meters
    }

    public var description: String {
        "StripeSettings(baseURL: \(self.baseURL), meters: \(self.meters.keys.sorted()), secretKey: <redacted>)"
    }
}
