import Foundation
import Hummingbird
import Metrics
import TollgateConfig
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateWire

/// The collector's admin API: keys and plans in the Redis registry, each change published to the
/// sidecars as a `QuotaUpdate` carrying the registry version it made.
///
/// Every route needs `Authorization: Bearer <collector.admin_token>` (compared in constant time);
/// without a configured token the routes answer 403 `admin_disabled`. Bodies are JSON (at most
/// 64 KiB), validated strictly: unknown fields, wrong types and unknown plans or features are 400s.
///
/// ```
/// GET  /v1/admin/keys                      list keys
/// GET  /v1/admin/keys/{key}                one key (id or name) with its effective plan
/// POST /v1/admin/keys                      {name, plan, key? | key_sha256?, limits?, stripe_customer?} → 201
/// PUT  /v1/admin/keys/{key}/plan           {plan}                               → PLAN_CHANGED
/// PUT  /v1/admin/keys/{key}/limits         {feature: limit | null, ...}         → PLAN_CHANGED
/// POST /v1/admin/keys/{key}/revoke                                              → KEY_REVOKED
/// POST /v1/admin/keys/{key}/unrevoke                                            → PLAN_CHANGED
/// POST /v1/admin/keys/{key}/credit         {feature?, units, idempotency_key?}  → CREDITED
/// GET  /v1/admin/plans                     every plan, in the config file's shape
/// GET  /v1/admin/plans/{name}              one plan
/// PUT  /v1/admin/plans/{name}              a plan in the config file's shape    → PLAN_CHANGED on u.*
/// ```
public struct AdminAPI: Sendable {
    /// The bearer token; nil disables the admin API (every route answers 403).
    public var token: String?
    /// Decimals of the x402 asset, for decimal prices in plan documents; default 6 (USDC).
    public var moneyDecimals: Int = 6
    /// Whether x402 is configured; plans that ask for payment are refused without it.
    public var acceptsPayments: Bool = false
    /// Largest request body, bytes; default 64 KiB.
    public var maxBodyBytes: Int = 64 << 10
    let client: RedisClient
    let publisher: UpdatePublisher
    let clock: any TollgateClock
    let registry = KeyRegistry()

    /// An admin API over the registry that `client` reaches, publishing through `publisher`.
    public init(token: String?, client: RedisClient, publisher: UpdatePublisher, clock: any TollgateClock = WallClock()) {
        self.token = token
        self.client = client
        self.publisher = publisher
        self.clock = clock
    }

    /// Adds the admin routes to `router`.
    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/admin/keys", use: self.route("keys.list", self.listKeys))
        router.post("/v1/admin/keys", use: self.route("keys.create", self.createKey))
        router.get("/v1/admin/keys/:key", use: self.route("keys.show", self.showKey))
        router.put("/v1/admin/keys/:key/plan", use: self.route("keys.plan", self.setPlan))
        router.put("/v1/admin/keys/:key/limits", use: self.route("keys.limits", self.setLimits))
        router.post("/v1/admin/keys/:key/revoke", use: self.route("keys.revoke") { try await self.setRevoked(true, $0, $1) })
        router.post("/v1/admin/keys/:key/unrevoke", use: self.route("keys.unrevoke") { try await self.setRevoked(false, $0, $1) })
        router.post("/v1/admin/keys/:key/credit", use: self.route("keys.credit", self.credit))
        router.get("/v1/admin/plans", use: self.route("plans.list", self.listPlans))
        router.get("/v1/admin/plans/:name", use: self.route("plans.show", self.showPlan))
        router.put("/v1/admin/plans/:name", use: self.route("plans.put", self.putPlan))
    }

    typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    /// Wraps a handler: authorisation first, errors as JSON, and a count per route and status.
    func route(_ name: String, _ handler: @escaping Handler) -> Handler {
        { request, context in
            let response: Response
            do {
                try self.authorize(request)
                response = try await handler(request, context)
            } catch {
                response = AdminError(error).response
            }
            Counter(label: CollectorMetricName.adminRequests, dimensions: [("route", name), ("status", "\(response.status.code)")]).increment()
            return response
        }
    }

    /// Throws 403 when no token is configured, 401 when the request's bearer token is missing or wrong.
    func authorize(_ request: Request) throws(AdminError) {
        guard let token, !token.isEmpty else {
            throw AdminError(.forbidden, "admin_disabled", "the admin API is off: set collector.admin_token or admin_token_env")
        }
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), Self.constantTimeEqual(String(header.dropFirst(prefix.count)), token) else {
            throw AdminError(.unauthorized, "unauthorized", "a valid Authorization: Bearer <admin token> is required")
        }
    }

    /// Compares SHA-256 digests byte by byte without an early exit, so timing says nothing about the token.
    static func constantTimeEqual(_ given: String, _ expected: String) -> Bool {
        let a = Array(APIKeyHasher.keyID(for: given).utf8)
        let b = Array(APIKeyHasher.keyID(for: expected).utf8)
        var difference: UInt8 = 0
        for index in 0..<min(a.count, b.count) { difference |= a[index] ^ b[index] }
        return difference == 0 && a.count == b.count
    }

    /// Runs `body` with a Redis connection on the client's thread.
    func redis<T: Sendable>(_ body: @escaping @Sendable (RedisConnection, KeyRegistry) throws -> T) async throws -> T {
        let registry = self.registry
        return try await self.client.withConnection { connection in try body(connection, registry) }
    }

    /// Publishes an update of `kind` at `version`; `configure` fills the rest.
    func publish(_ kind: Tollgate_V1_QuotaUpdate.Kind, version: UInt64, keyID: String = "", _ configure: (inout Tollgate_V1_QuotaUpdate) -> Void = { _ in }) {
        var update = Tollgate_V1_QuotaUpdate()
        update.kind = kind
        update.version = version
        update.keyID = keyID
        configure(&update)
        self.publisher.publish(update)
    }

    /// The request body, at most `maxBodyBytes` (413 beyond).
    func body(_ request: Request) async throws -> [UInt8] {
        var buffer = try await request.body.collect(upTo: self.maxBodyBytes)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }
}
