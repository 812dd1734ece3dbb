import Foundation
import Hummingbird
import TollgateCore
import TollgateStore

/// The collector's usage and billing API: read-only views of the counters enforcement keeps.
///
/// ```
/// GET /v1/usage/{key}?period=<id>          one key's usage per feature (`UsageReport`)
/// GET /v1/usage/{key}/bill?period=<id>     its bill estimate (`UsageBill`)
/// GET /v1/usage?plan=&over=&limit=         keys nearest to or over their limit (`UsageOverview`)
/// GET /v1/settlements?key=&limit=          a key's settlement ledger (when x402 is configured)
/// ```
///
/// Auth: with no token configured (no `collector.admin_token`, no `collector.usage_token`) the
/// routes are open, as on a developer's machine. Once either is configured, every route needs
/// `Authorization: Bearer <token>` with one of them (401 otherwise): a collector that protects its
/// admin API does not hand out every customer's usage and payments to anyone who asks.
/// `{key}` is a key id (64 hex) or a key's name. Errors are JSON `{"error", "message"}`.
struct UsageAPI: Sendable {
    let reader: any UsageReading
    let keyNames: [String: String]
    let currency: BillingCurrency
    let tokens: [String]
    let payments: PaymentCoordinator?
    let clock: any TollgateClock

    /// The largest `limit` of a listing.
    static let maxLimit = 1_000

    /// Adds the routes to `router`.
    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/usage", use: self.guarded(self.overview))
        router.get("/v1/usage/:key", use: self.guarded(self.report))
        router.get("/v1/usage/:key/bill", use: self.guarded(self.bill))
        router.get("/v1/settlements", use: self.guarded(self.settlements))
    }

    typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    /// Authorisation first, then the handler; any error becomes its JSON answer.
    func guarded(_ handler: @escaping Handler) -> Handler {
        { request, context in
            do {
                try self.authorize(request)
                return try await handler(request, context)
            } catch {
                return AdminError(usage: error).usageResponse
            }
        }
    }

    /// Throws 401 unless no token is configured or the request bears one of them.
    func authorize(_ request: Request) throws(AdminError) {
        guard !self.tokens.isEmpty else { return }
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        // Compare against every token, always, so timing does not say which one matched.
        let given = header.hasPrefix(prefix) ? String(header.dropFirst(prefix.count)) : ""
        let matched = self.tokens.reduce(false) { AdminAPI.constantTimeEqual(given, $1) || $0 }
        guard header.hasPrefix(prefix), matched else {
            throw AdminError(.unauthorized, "unauthorized", "a valid Authorization: Bearer <usage or admin token> is required")
        }
    }

    func report(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let entry = try await self.entry(context)
        let report = try await UsageReport.make(entry: entry, at: self.clock.now(), periodID: try Self.period(request),
                                                reader: self.reader, currency: self.currency)
        return try CollectorHTTP.encode(report)
    }

    func bill(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let entry = try await self.entry(context)
        let report = try await UsageReport.make(entry: entry, at: self.clock.now(), periodID: try Self.period(request),
                                                reader: self.reader, currency: self.currency)
        return try CollectorHTTP.encode(report.bill(plan: entry.effectivePlan))
    }

    func overview(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let parameters = request.uri.queryParameters
        var query = UsageOverview.Query()
        if let plan = parameters.get("plan"), !plan.isEmpty { query.plan = plan }
        if let text = parameters.get("over") {
            guard let over = UInt64(text), over <= FeatureBill.maxPercent else {
                throw AdminError(.badRequest, "bad_over", "over is a percent of the included units, an integer from 0 to \(FeatureBill.maxPercent), got \"\(text)\"")
            }
            query.overPercent = over
        }
        query.limit = try Self.limit(request, default: 100)
        let overview = try await UsageOverview.make(reader: self.reader, query: query, at: self.clock.now(), currency: self.currency)
        return try CollectorHTTP.encode(overview)
    }

    func settlements(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard let payments = self.payments else {
            throw AdminError(.notFound, "payments_disabled", "no x402 settings")
        }
        guard let raw = request.uri.queryParameters.get("key") else {
            throw AdminError(.badRequest, "bad_request", "give ?key=<id or name>")
        }
        guard let keyID = try await self.reader.resolveKey(raw, keyNames: self.keyNames) else { throw AdminError.unknownUsageKey }
        let limit = try Self.limit(request, default: 100)
        return try CollectorHTTP.encode(["settlements": try await payments.settlements(keyID: keyID, limit: limit)])
    }

    /// The registry entry of the `{key}` path parameter (an id or a name); 404 when unknown.
    func entry(_ context: BasicRequestContext) async throws -> RegistryEntry {
        let parameter = try context.parameters.require("key")
        let raw = parameter.removingPercentEncoding ?? parameter
        guard let keyID = try await self.reader.resolveKey(raw, keyNames: self.keyNames),
              let entry = try await self.reader.entry(keyID: keyID) else { throw AdminError.unknownUsageKey }
        return entry
    }

    /// `?period=`: nil when absent; an empty value is a 400 rather than "the current period".
    static func period(_ request: Request) throws(AdminError) -> String? {
        guard let period = request.uri.queryParameters.get("period") else { return nil }
        guard !period.isEmpty else {
            throw AdminError(.badRequest, "bad_period", "period is empty; leave it out for the current period, or give an id such as d20261123 or m202611")
        }
        return period
    }

    /// `?limit=`: an integer from 1 to `maxLimit`, `default` when absent.
    static func limit(_ request: Request, default value: Int) throws(AdminError) -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return value }
        guard let limit = Int(text), (1...Self.maxLimit).contains(limit) else {
            throw AdminError(.badRequest, "bad_limit", "limit is an integer from 1 to \(Self.maxLimit), got \"\(text)\"")
        }
        return limit
    }
}
