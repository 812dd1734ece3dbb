import Foundation
import Hummingbird
import Logging
import TollgateConfig
import TollgateCore

/// The sidecar's admin port: health, readiness, metrics, and the local report/check API for
/// services that are not behind the proxy.
///
/// ```
/// GET  /healthz     liveness, with the uplink's status
/// GET  /readyz      200 when the proxy listens and the uplink accepts usage, else 503
/// GET  /metrics     Prometheus text format
/// POST /v1/report   {"key": "...", "feature": "api_call", "units": 1, "idempotency_key": "..."}
/// POST /v1/check    {"key": "...", "feature": "api_call", "units": 1}
/// GET  /v1/updates  the last pushed updates taken, newest first: version, kind, key, when sent
///                   (collector clock, ms) and when applied here (ns), and whether it was stale
/// ```
enum SidecarAdminHTTP {
    struct ReportRequest: Decodable {
        var key: String
        var feature: String?
        var units: UInt64?
        var idempotencyKey: String?
    }

    struct CheckRequest: Decodable {
        var key: String
        var feature: String?
        var units: UInt64?
    }

    static func makeApplication(
        listen: String,
        directory: KeyDirectory,
        recorder: UplinkRecorder,
        uplink: Uplink,
        proxy: ProxyServer,
        gate: QuotaGate?,
        updates: UpdateLog? = nil,
        renderMetrics: @escaping @Sendable () -> String,
        logger: Logger
    ) throws -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz") { _, _ -> Response in
            let status = uplink.status
            return json(.ok, [
                "status": "ok", "sidecar": status.sidecarID, "uplink_connected": status.isConnected,
                "spool_bytes": status.spoolBytes, "spool_records": status.spoolRecords,
                "unacked_batches": status.unackedBatches, "spool_full": status.isFull,
            ])
        }
        router.get("/readyz") { _, _ -> Response in
            let listening = await proxy.port != nil
            let status = uplink.status
            let ready = listening && status.isRunning && !status.isFull
            return json(ready ? .ok : .serviceUnavailable, [
                "ready": ready, "proxy_listening": listening, "uplink_running": status.isRunning, "spool_full": status.isFull,
            ])
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: renderMetrics())))
        }
        router.get("/v1/updates") { _, _ -> Response in
            let entries: [[String: Any]] = (updates?.entries ?? []).map { entry in
                ["version": entry.version, "kind": entry.kind, "key_id": entry.keyID, "feature": entry.feature, "plan": entry.plan,
                 "sent_at_unix_ms": entry.sentAtUnixMs, "applied_at_unix_ns": entry.appliedAtUnixNanos, "applied": entry.applied]
            }
            return json(.ok, ["updates": entries])
        }
        router.post("/v1/report") { request, context -> Response in
            guard let body = try? await decode(ReportRequest.self, request, context) else {
                return json(.badRequest, ["error": "bad_request", "message": "expected {key, feature?, units?, idempotency_key?}"])
            }
            let keyID = APIKeyHasher.keyID(for: body.key)
            // A key no collector could check is not unknown: 503, so the service retries the report.
            guard let resolved = try? await directory.resolve(keyID) else { return Self.unreachable }
            guard case .known(let key) = resolved else {
                return json(.unauthorized, ["error": "unknown_api_key"])
            }
            let feature = FeatureName(body.feature ?? FeatureName.apiCall.rawValue)
            guard key.effectivePlan?.features[feature] != nil else {
                return json(.badRequest, ["error": "unknown_feature", "message": "plan \(key.plan) has no feature \(feature)"])
            }
            let event = UsageEvent(key: keyID, feature: feature, units: body.units ?? 1, idempotencyKey: body.idempotencyKey, at: WallClock.now())
            switch recorder.record(event, extraUnits: [:]) {
            case .recorded: return json(.ok, ["recorded": true, "duplicate": false])
            case .duplicate: return json(.ok, ["recorded": false, "duplicate": true])
            case .refused: return json(.serviceUnavailable, ["error": "spool_full", "message": "usage cannot be recorded now"])
            }
        }
        router.post("/v1/check") { request, context -> Response in
            guard let body = try? await decode(CheckRequest.self, request, context) else {
                return json(.badRequest, ["error": "bad_request", "message": "expected {key, feature?, units?}"])
            }
            let keyID = APIKeyHasher.keyID(for: body.key)
            guard let resolved = try? await directory.resolve(keyID) else { return Self.unreachable }
            guard case .known(let key) = resolved else {
                return json(.ok, ["allowed": false, "reason": "unknown_api_key"])
            }
            let feature = FeatureName(body.feature ?? FeatureName.apiCall.rawValue)
            switch key.effectivePlan?.features[feature] {
            case .boolean(let enabled)?:
                return json(.ok, ["allowed": enabled, "feature": feature.rawValue, "kind": "boolean"])
            case .metered(let metered)?:
                guard let gate, let plan = key.gatePlan else {
                    return json(.ok, [
                        "allowed": true, "feature": feature.rawValue, "kind": "metered", "limit": metered.limit,
                        "policy": metered.policy.name, "balance": NSNull(), "balance_source": "not_enforced",
                    ])
                }
                // The same decision a proxied call gets; an admission is handed straight back, so a
                // check never spends quota.
                let units = body.units ?? 1
                let request = GateRequest(keyID: keyID, plan: plan, feature: feature, units: units)
                let now = gate.now()
                let verdict: GateVerdict
                if let quick = gate.decide(request, at: now) { verdict = quick } else { verdict = await gate.waitForDecision(request, at: now) }
                var answer: [String: Any] = [
                    "feature": feature.rawValue, "kind": "metered", "limit": metered.limit, "policy": metered.policy.name,
                    "units": units,
                ]
                switch verdict {
                case .admit(let admission):
                    gate.refund(keyID: keyID, feature: feature, leasedUnits: admission.leasedUnits, at: now)
                    answer["allowed"] = true
                    // The balance before this check: the units it took were handed straight back.
                    let (before, overflow) = admission.remaining.addingReportingOverflow(units)
                    answer["balance"] = admission.remaining == .max || overflow ? NSNull() : NSNumber(value: before)
                case .refuse(let refusal):
                    answer["allowed"] = false
                    answer["balance"] = 0
                    answer["reason"] = Self.reason(refusal.reason)
                    if let retry = refusal.retryAfterSeconds { answer["retry_after"] = retry }
                }
                return json(.ok, answer)
            case nil:
                return json(.ok, ["allowed": false, "reason": "feature_not_in_plan"])
            }
        }
        let (host, port) = try ProxyConfiguration.hostPort(listen, what: "admin")
        return Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "tollgate-sidecar"),
            logger: logger
        )
    }

    static func reason(_ reason: GateRefusal.Reason) -> String {
        switch reason {
        case .quotaExhausted: "quota_exhausted"
        case .rateLimited: "rate_limited"
        case .paymentRequired: "payment_required"
        case .forbidden: "feature_not_enabled"
        case .collectorUnreachable: "collector_unreachable"
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: BasicRequestContext) async throws -> T {
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(type, from: Data(buffer.readableBytesView))
    }

    /// No collector answered a key lookup in time: the key can be neither trusted nor called unknown.
    static var unreachable: Response {
        var response = json(.serviceUnavailable, ["error": "collector_unreachable", "message": "the key cannot be checked right now; retry"])
        response.headers[.retryAfter] = "1"
        return response
    }

    static func json(_ status: HTTPResponse.Status, _ body: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
