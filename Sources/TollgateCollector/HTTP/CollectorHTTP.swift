import Foundation
import Hummingbird
import Logging
import TollgateConfig
import TollgateCore
import TollgateStore

/// The collector's HTTP surface: usage API, admin API, health and metrics.
///
/// ```
/// GET /v1/usage/{key}            key id (64 hex) or name; ?period=<id>     (see `UsageAPI`)
/// GET /v1/usage/{key}/bill       bill estimate; ?period=<id>
/// GET /v1/usage?plan=&over=&limit=  keys nearest to or over their limit
/// GET /v1/settlements?key=      the key's settlement ledger, newest first (&limit=, at most 1,000)
/// GET /healthz                   200 when ready and Redis answers, 503 (`starting`, `redis_unavailable`)
///                                otherwise; the facilitator's /supported
/// GET /metrics                   Prometheus text format
/// GET /dashboard                 the live dashboard page; GET /v1/dashboard/state its JSON (see `Dashboard`)
/// /v1/admin/...                  keys and plans, bearer token (see `AdminAPI`)
/// ```
public enum CollectorHTTP {
    /// Builds the Hummingbird application; it is a `Service` to run in the collector's group.
    ///
    /// `usageTokens` guard the usage API (`UsageAPI`): empty leaves it open; give the admin token
    /// and the read token when configured. `currency` is what usage amounts are counted in.
    public static func makeApplication(
        listen: String,
        reader: any UsageReading,
        keyNames: [String: String],
        admin: AdminAPI? = nil,
        payments: PaymentCoordinator? = nil,
        usageTokens: [String] = [],
        currency: BillingCurrency = BillingCurrency(),
        dashboard: Dashboard? = nil,
        health: @escaping @Sendable () async -> Bool,
        ready: @escaping @Sendable () -> Bool = { true },
        renderMetrics: @escaping @Sendable () -> String,
        clock: any TollgateClock = WallClock(),
        logger: Logger
    ) throws -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz") { _, _ -> Response in
            var body = payments?.facilitatorStatus ?? [:]
            guard ready() else {
                // Registry not loaded or ingest not listening yet: keep load balancers away.
                body["status"] = "starting"
                return json(.serviceUnavailable, body)
            }
            if await health() {
                body["status"] = "ok"
                return json(.ok, body)
            }
            body["status"] = "redis_unavailable"
            return json(.serviceUnavailable, body)
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: renderMetrics()))
            )
        }
        UsageAPI(reader: reader, keyNames: keyNames, currency: currency, tokens: usageTokens, payments: payments, clock: clock)
            .register(on: router)
        admin?.register(on: router)
        dashboard?.register(on: router)
        let (host, port) = try splitHostPort(listen)
        return Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "tollgate-collector"),
            logger: logger
        )
    }

    static func splitHostPort(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
            throw HTTPError(.internalServerError, message: "bad listen address \(text)")
        }
        return (String(text[..<colon]), port)
    }

    static func json(_ status: HTTPResponse.Status, _ body: [String: String]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func encode(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
