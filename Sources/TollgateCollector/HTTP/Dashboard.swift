import Foundation
import Hummingbird
import TollgateConfig
import TollgateRedis
import TollgateStore

/// The collector's live dashboard: one self-contained HTML page and the JSON it polls.
///
/// ```
/// GET /dashboard             the page (inline CSS and JS; loads nothing from anywhere else)
/// GET /v1/dashboard/state    `DashboardState` as JSON; the page polls it every 1.5 s
/// ```
///
/// The state lists every key's usage, so it can be guarded by `collector.dashboard_token`: then
/// both routes need HTTP Basic auth with the token as password (any user name; a browser asks
/// once and sends it with the page's polls too) or `Authorization: Bearer <token>`. Without a
/// token both are open, like `GET /v1/usage/{key}`, to whoever reaches `collector.http`
/// (loopback by default).
///
/// Concurrent viewers share one state: it is read from Redis at most once per `cacheFor`.
public struct Dashboard: Sendable {
    /// The token both routes require; nil leaves them open.
    public var token: String?
    /// How long one state is served before it is read again; default 500 ms.
    public var cacheFor: Duration = .milliseconds(500)
    let source: DashboardSource
    let cache = DashboardCache()

    /// A dashboard over `source`, guarded by `token` when it is set.
    public init(source: DashboardSource, token: String?) {
        self.source = source
        self.token = token
    }

    /// Adds `/dashboard` and `/v1/dashboard/state` to `router`.
    func register(on router: Router<BasicRequestContext>) {
        router.get("/dashboard") { request, _ -> Response in
            if let refusal = self.refusal(request) { return refusal }
            var headers = Self.securityHeaders
            headers[.contentType] = "text/html; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        router.get("/v1/dashboard/state") { request, _ -> Response in
            if let refusal = self.refusal(request) { return refusal }
            do {
                let body = try await self.state()
                return Response(
                    status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                    body: .init(byteBuffer: ByteBuffer(bytes: body))
                )
            } catch let error as StoreError {
                let unavailable = error.code == .unavailable || error.code == .redis
                return CollectorHTTP.json(unavailable ? .serviceUnavailable : .internalServerError, [
                    "error": unavailable ? "redis_unavailable" : "corrupt_record", "message": error.message,
                ])
            } catch let error as RedisError {
                return CollectorHTTP.json(.serviceUnavailable, ["error": "redis_unavailable", "message": "\(error)"])
            } catch {
                return CollectorHTTP.json(.internalServerError, ["error": "internal", "message": "\(error)"])
            }
        }
    }

    /// The encoded state, from the cache while it is fresh.
    func state() async throws -> Data {
        let now = ContinuousClock.now
        if let cached = self.cache.get(newerThan: now - self.cacheFor) { return cached }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let body = try encoder.encode(try await self.source.make())
        self.cache.set(body, at: now)
        return body
    }

    /// Nil when the request may see the dashboard, else the 401 to answer.
    func refusal(_ request: Request) -> Response? {
        guard let token, !token.isEmpty else { return nil }
        if let given = Self.credential(request.headers[.authorization] ?? ""), AdminAPI.constantTimeEqual(given, token) {
            return nil
        }
        var response = CollectorHTTP.json(.unauthorized, [
            "error": "unauthorized", "message": "the dashboard needs HTTP Basic auth with the dashboard token as password, or Bearer <token>",
        ])
        response.headers[.wwwAuthenticate] = #"Basic realm="Tollgate dashboard", charset="UTF-8""#
        return response
    }

    /// The secret an `Authorization` header carries: a Bearer token, or the password of Basic credentials.
    static func credential(_ header: String) -> String? {
        if header.hasPrefix("Bearer ") { return String(header.dropFirst(7)) }
        guard header.hasPrefix("Basic "), header.utf8.count <= 4_096,
              let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return String(text[text.index(after: colon)...])
    }

    /// The page may load only from this origin and inline; no frames, no sniffing.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        .cacheControl: "no-store",
        .xContentTypeOptions: "nosniff",
    ]
}

/// The last encoded state and when it was read.
// @unchecked Sendable: `entry` is only touched under `lock`.
final class DashboardCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entry: (at: ContinuousClock.Instant, body: Data)?

    func get(newerThan cutoff: ContinuousClock.Instant) -> Data? {
        self.lock.withLock { self.entry.flatMap { $0.at > cutoff ? $0.body : nil } }
    }

    func set(_ body: Data, at instant: ContinuousClock.Instant) {
        self.lock.withLock { self.entry = (instant, body) }
    }
}
