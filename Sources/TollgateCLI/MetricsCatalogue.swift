/// Every metric Tollgate exports, in one place: its type, labels, the process that exports it and
/// what it means.
///
/// The help text here is what `/metrics` prints in each family's `# HELP` line (through
/// `CataloguedMetricsFactory`), and `tollgate metrics-catalogue` prints this list as the Markdown
/// table in docs/metrics.md. tests/system/test_metrics.py checks all three agree: every family a
/// live collector and sidecar export is listed here with the same type, every listed family is
/// exported, and `promtool check metrics` passes.
enum MetricsCatalogue {
    enum Kind: String { case counter, gauge, histogram }
    enum Process: String { case collector, sidecar }

    struct Entry {
        var name: String
        var kind: Kind
        var process: Process
        var labels: [String]
        var help: String
    }

    static let entries: [Entry] = collector + sidecar

    /// Help text by metric name.
    static let help: [String: String] = Dictionary(entries.map { ($0.name, $0.help) }, uniquingKeysWith: { first, _ in first })

    static let collector: [Entry] = [
        Entry(name: "tollgate_collector_messages_total", kind: .counter, process: .collector, labels: ["kind"],
              help: "Envelopes received from sidecars, by kind (usage_batch, hello, heartbeat, lease_request, key_lookup, payment, ...)."),
        Entry(name: "tollgate_collector_decode_errors_total", kind: .counter, process: .collector, labels: ["reason"],
              help: "Frames refused before dispatch because they did not decode (malformed, bad framing, oversized, unsupported version)."),
        Entry(name: "tollgate_collector_unhandled_messages_total", kind: .counter, process: .collector, labels: ["kind"],
              help: "Envelopes of a kind the collector does not serve; they are dropped."),
        Entry(name: "tollgate_collector_batches_total", kind: .counter, process: .collector, labels: ["result"],
              help: "Usage batches by result: applied (committed to Redis, then acked), duplicate (already applied: acked, counted once), rejected (invalid: nacked), unavailable (Redis failed: not acked, the sidecar retries)."),
        Entry(name: "tollgate_collector_aggregates_total", kind: .counter, process: .collector, labels: ["result"],
              help: "Per key, feature and period aggregates written by the apply script, by result (applied, duplicate)."),
        Entry(name: "tollgate_collector_redis_seconds", kind: .histogram, process: .collector, labels: ["op"],
              help: "Redis round trips in seconds, by operation (apply_batch, usage, registry_load, registry_lookup)."),
        Entry(name: "tollgate_collector_replies_dropped_total", kind: .counter, process: .collector, labels: [],
              help: "Replies to sidecars that could not be sent (the peer is gone or its queue is full); the sidecar retries."),
        Entry(name: "tollgate_collector_curve_clients_total", kind: .counter, process: .collector, labels: ["socket", "result"],
              help: "CURVE handshakes decided by the allow list (zeromq.curve.allowed_client_keys), by server socket (ingest, updates) and result (admitted, refused)."),
        Entry(name: "tollgate_collector_connected_sidecars", kind: .gauge, process: .collector, labels: [],
              help: "Sidecars heard from (hello or heartbeat) within the last 5 seconds."),
        Entry(name: "tollgate_collector_lease_requests_total", kind: .counter, process: .collector, labels: ["result"],
              help: "Quota lease requests answered, by result (granted, exhausted: nothing left to lease, refused: unknown key or feature, unavailable: Redis failed)."),
        Entry(name: "tollgate_collector_lease_units_granted_total", kind: .counter, process: .collector, labels: [],
              help: "Quota units granted to sidecars in leases."),
        Entry(name: "tollgate_collector_lease_units_returned_total", kind: .counter, process: .collector, labels: [],
              help: "Leased units sidecars handed back unused (graceful shutdown, plan change, an idle holder when a key is exhausted)."),
        Entry(name: "tollgate_collector_updates_raised_total", kind: .counter, process: .collector, labels: ["kind"],
              help: "Quota updates handed to the publisher, by kind (exhausted, credited, plan_changed, key_added, key_revoked, ...)."),
        Entry(name: "tollgate_collector_updates_published_total", kind: .counter, process: .collector, labels: ["kind"],
              help: "Quota updates sent to sidecars on the PUB socket, by kind."),
        Entry(name: "tollgate_collector_updates_dropped_total", kind: .counter, process: .collector, labels: ["reason"],
              help: "Quota updates not sent, by reason (queue_full, stopped, encode, would_block); sidecars resynchronise from versions."),
        Entry(name: "tollgate_collector_admin_requests_total", kind: .counter, process: .collector, labels: ["route", "status"],
              help: "Admin API requests, by route (keys.create, keys.plan, plans.limits, ...) and HTTP status code."),
        Entry(name: "tollgate_collector_facilitator_supported", kind: .gauge, process: .collector, labels: [],
              help: "1 when the x402 facilitator's GET /supported answered at start and lists this server's scheme and network, else 0."),
        Entry(name: "tollgate_collector_facilitator_seconds", kind: .histogram, process: .collector, labels: ["op"],
              help: "Time waiting for the x402 facilitator in seconds, by call (verify, settle)."),
        Entry(name: "tollgate_collector_payment_step_seconds", kind: .histogram, process: .collector, labels: ["phase"],
              help: "A payment step at the collector in seconds, facilitator included, by phase (verify_and_claim, settle, release)."),
        Entry(name: "tollgate_collector_payments_verified_total", kind: .counter, process: .collector, labels: [],
              help: "x402 payments the facilitator verified as valid."),
        Entry(name: "tollgate_collector_payments_settled_total", kind: .counter, process: .collector, labels: [],
              help: "x402 payments settled and recorded in the ledger (each credited once)."),
        Entry(name: "tollgate_collector_payments_settled_atomic_total", kind: .counter, process: .collector, labels: [],
              help: "Amount settled, in atomic units of the configured asset (for USDC, millionths)."),
        Entry(name: "tollgate_collector_payments_failed_total", kind: .counter, process: .collector, labels: ["reason"],
              help: "x402 payment steps that failed, by x402 reason (invalid_payment_requirements, invalid_exact_evm_nonce_already_used, settle_failed, unavailable, ...)."),
        Entry(name: "tollgate_collector_payment_identifier_total", kind: .counter, process: .collector, labels: ["result"],
              help: "x402 payments carrying a payment-identifier id, by result: kept (a settled response stored with its id), too_large (settled, response over x402.idempotency.max_response_bytes, not kept), replayed (a retry got the kept response), conflict (the id with another payment: 409), in_progress (the first attempt not settled: 409), not_kept (a retry of a settled id whose response was not kept: 409), invalid (a malformed extension: 402)."),
        Entry(name: "tollgate_collector_sink_events_total", kind: .counter, process: .collector, labels: ["kind"],
              help: "Events handed to every sink after Redis committed them, by kind (batch, settlement)."),
        Entry(name: "tollgate_collector_sink_dropped_total", kind: .counter, process: .collector, labels: ["reason"],
              help: "Events no sink saw, by reason (queue_full, stopped); ingest never waits for the sinks."),
        Entry(name: "tollgate_collector_sink_queue_depth", kind: .gauge, process: .collector, labels: [],
              help: "Events the sink thread took in its last pass (0 when idle)."),
        Entry(name: "tollgate_collector_audit_lines_total", kind: .counter, process: .collector, labels: ["type"],
              help: "JSONL audit log lines written, by type (batch, settlement)."),
        Entry(name: "tollgate_collector_audit_write_errors_total", kind: .counter, process: .collector, labels: [],
              help: "Audit lines that could not be written (disk full, file unwritable)."),
        Entry(name: "tollgate_collector_audit_rotations_total", kind: .counter, process: .collector, labels: [],
              help: "Audit log rotations by size."),
        Entry(name: "tollgate_collector_stripe_events_sent_total", kind: .counter, process: .collector, labels: ["event_name"],
              help: "Stripe meter events Stripe accepted, by meter event name."),
        Entry(name: "tollgate_collector_stripe_units_sent_total", kind: .counter, process: .collector, labels: ["event_name"],
              help: "Units in the Stripe meter events Stripe accepted, by meter event name."),
        Entry(name: "tollgate_collector_stripe_retries_total", kind: .counter, process: .collector, labels: ["status"],
              help: "Stripe requests retried with backoff, by cause (429, 500, ..., network, timeout)."),
        Entry(name: "tollgate_collector_stripe_failures_total", kind: .counter, process: .collector, labels: ["reason"],
              help: "Stripe deltas left pending for a later pass, by reason (rejected: a 4xx, retries_exhausted, redis)."),
        Entry(name: "tollgate_collector_stripe_resends_total", kind: .counter, process: .collector, labels: [],
              help: "Pending ranges sent again with their original identifier (restart, lost answer, another collector's claim expired)."),
        Entry(name: "tollgate_collector_stripe_skipped_total", kind: .counter, process: .collector, labels: ["reason"],
              help: "Billable counters not sent to Stripe, by reason (no_customer: the key maps to no Stripe customer)."),
        Entry(name: "tollgate_collector_stripe_pending_ranges", kind: .gauge, process: .collector, labels: [],
              help: "Ranges written to Redis as pending and not yet acknowledged by Stripe, as this collector knows them."),
        Entry(name: "tollgate_collector_stripe_lag_units", kind: .gauge, process: .collector, labels: [],
              help: "Units counted in Redis but not yet acknowledged by Stripe, as of each cursor's last claim."),
    ]

    static let sidecar: [Entry] = [
        Entry(name: "tollgate_sidecar_proxy_requests_total", kind: .counter, process: .sidecar, labels: ["class"],
              help: "Responses sent to clients, by status class (1xx to 5xx), refusals included."),
        Entry(name: "tollgate_sidecar_proxy_in_flight_requests", kind: .gauge, process: .sidecar, labels: [],
              help: "Requests between their head arriving and their response ending."),
        Entry(name: "tollgate_sidecar_proxy_upstream_errors_total", kind: .counter, process: .sidecar, labels: ["kind"],
              help: "Upstream failures, by kind (connect: 502, timeout: 504, closed mid-response)."),
        Entry(name: "tollgate_sidecar_proxy_refused_total", kind: .counter, process: .sidecar, labels: ["reason"],
              help: "Requests the proxy refused itself, by reason (malformed, header_too_large, body_too_large, missing_key, unknown_key, key_lookup_timeout, payment_identifier_conflict, payment_in_progress, payment_response_not_kept, ...)."),
        Entry(name: "tollgate_sidecar_proxy_units_parse_errors_total", kind: .counter, process: .sidecar, labels: [],
              help: "Tollgate-Units response headers that did not parse and were ignored (the call is still counted)."),
        Entry(name: "tollgate_sidecar_paid_calls_total", kind: .counter, process: .sidecar, labels: ["outcome"],
              help: "Calls that carried an x402 payment, by outcome (refused, settled, settlement_failed, released, replayed: a payment-identifier retry answered with the kept response, not metered)."),
        Entry(name: "tollgate_sidecar_quota_decisions_total", kind: .counter, process: .sidecar, labels: ["verdict"],
              help: "Quota gate decisions, by verdict (admitted, admitted_unreachable, quota_exhausted, rate_limited, payment_required, forbidden, collector_unreachable); reported in batches, at most 100 ms behind."),
        Entry(name: "tollgate_sidecar_quota_round_trips_total", kind: .counter, process: .sidecar, labels: [],
              help: "Decisions that waited for a collector round trip (nothing held locally); steady traffic keeps this near 0."),
        Entry(name: "tollgate_sidecar_lease_requests_total", kind: .counter, process: .sidecar, labels: [],
              help: "Lease requests sent to the collector."),
        Entry(name: "tollgate_sidecar_lease_request_failures_total", kind: .counter, process: .sidecar, labels: [],
              help: "Lease requests that failed (timeout or error reply); the plan's unreachable rule applies meanwhile."),
        Entry(name: "tollgate_sidecar_lease_units_granted_total", kind: .counter, process: .sidecar, labels: [],
              help: "Quota units granted to this sidecar in leases."),
        Entry(name: "tollgate_sidecar_lease_grants_stale_total", kind: .counter, process: .sidecar, labels: [],
              help: "Lease grants that answered a request sent before a pushed change (plan, limit, revocation) dropped a key's state: handed back unused, and the request sent again."),
        Entry(name: "tollgate_sidecar_quota_updates_total", kind: .counter, process: .sidecar, labels: ["result"],
              help: "Pushed quota updates, by result (applied, stale: older than what the gate already has)."),
        Entry(name: "tollgate_sidecar_updates_received_total", kind: .counter, process: .sidecar, labels: [],
              help: "Update messages received on the SUB socket."),
        Entry(name: "tollgate_sidecar_updates_dropped_total", kind: .counter, process: .sidecar, labels: [],
              help: "Update messages that did not decode and were dropped."),
        Entry(name: "tollgate_sidecar_update_lag_seconds", kind: .histogram, process: .sidecar, labels: [],
              help: "From the collector sending a pushed update (its clock, millisecond resolution) to this sidecar applying it; across hosts it includes their clocks' offset. GET /v1/updates on the admin port lists the last 256."),
        Entry(name: "tollgate_uplink_batches_sent_total", kind: .counter, process: .sidecar, labels: [],
              help: "Usage batches sent to a collector for the first time."),
        Entry(name: "tollgate_uplink_batches_retried_total", kind: .counter, process: .sidecar, labels: [],
              help: "Re-sends of a usage batch not acknowledged in time (backoff; the collector counts it once)."),
        Entry(name: "tollgate_uplink_batches_acked_total", kind: .counter, process: .sidecar, labels: ["outcome"],
              help: "Usage batches acknowledged after commit, by outcome (applied, duplicate)."),
        Entry(name: "tollgate_uplink_batches_rejected_total", kind: .counter, process: .sidecar, labels: [],
              help: "Usage batches the collector rejected as invalid; each is kept in the dead-letter file."),
        Entry(name: "tollgate_uplink_calls_rejected_total", kind: .counter, process: .sidecar, labels: [],
              help: "Calls inside rejected batches."),
        Entry(name: "tollgate_uplink_events_refused_total", kind: .counter, process: .sidecar, labels: [],
              help: "Usage events refused because the spool was full (the proxy refuses the call rather than lose its count)."),
        Entry(name: "tollgate_uplink_frames_dropped_total", kind: .counter, process: .sidecar, labels: [],
              help: "Frames from a collector that did not decode or were not for this sidecar."),
        Entry(name: "tollgate_uplink_connected", kind: .gauge, process: .sidecar, labels: [],
              help: "1 while a collector answered within the last few heartbeat intervals, else 0."),
        Entry(name: "tollgate_uplink_unacked_batches", kind: .gauge, process: .sidecar, labels: [],
              help: "Usage batches spooled and sent but not yet acknowledged."),
        Entry(name: "tollgate_spool_bytes", kind: .gauge, process: .sidecar, labels: [],
              help: "Bytes in live spool segments (usage not yet acknowledged)."),
        Entry(name: "tollgate_spool_records", kind: .gauge, process: .sidecar, labels: [],
              help: "Records in live spool segments."),
        Entry(name: "tollgate_spool_full", kind: .gauge, process: .sidecar, labels: [],
              help: "1 while the spool is at its size bound and refuses appends, else 0."),
        Entry(name: "tollgate_spool_truncated_records_total", kind: .counter, process: .sidecar, labels: ["reason"],
              help: "Damaged spool records cut away at replay, by reason (torn: a partial write at the end, corrupt: a bad checksum)."),
        Entry(name: "tollgate_spool_dead_letters_total", kind: .counter, process: .sidecar, labels: [],
              help: "Records written to the dead-letter file (batches the collector rejected)."),
    ]

    /// The catalogue as the Markdown tables of docs/metrics.md, one per process.
    static func markdown() -> String {
        var out = ""
        for process in [Process.collector, .sidecar] {
            out += "## \(process.rawValue)\n\n| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n"
            for entry in entries where entry.process == process {
                let labels = entry.labels.isEmpty ? "" : entry.labels.map { "`\($0)`" }.joined(separator: ", ")
                out += "| `\(entry.name)` | \(entry.kind.rawValue) | \(labels) | \(entry.help) |\n"
            }
            out += "\n"
        }
        return out
    }
}
