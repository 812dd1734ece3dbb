import NIOHTTP1
import TollgateCore

/// Writes `RateLimit-Policy` and `RateLimit` for the gate's figures, as `RateLimitHeaders` would
/// (the same text, tested), without building its arrays and strings on every response: the
/// policy value is kept while its request and figures stay the same (a connection's calls
/// usually share them), and the `RateLimit` value is the request's quoted names with two numbers.
///
/// Threading: a value owned by one `ProxyHandler`, on its event loop.
struct RateLimitFields {
    private struct PolicyKey: Equatable {
        /// Held, not just its address: a freed request's address may be the next one's.
        var request: GateRequest
        var quota: UInt64?
        var quotaWindow: UInt64?
        var rate: UInt64?
        var rateWindow: UInt64?

        static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.request === rhs.request && lhs.quota == rhs.quota && lhs.quotaWindow == rhs.quotaWindow
                && lhs.rate == rhs.rate && lhs.rateWindow == rhs.rateWindow
        }
    }

    private var policyKey: PolicyKey?
    private var policyValue = ""

    /// Adds both fields to `headers`; nothing when there are no figures.
    mutating func add(_ limits: GateLimits, for request: GateRequest, to headers: inout HTTPHeaders) {
        guard !limits.isEmpty else { return }
        let key = PolicyKey(request: request, quota: limits.quota?.quota, quotaWindow: limits.quota?.windowSeconds,
                            rate: limits.rate?.quota, rateWindow: limits.rate?.windowSeconds)
        if key != self.policyKey {
            self.policyKey = key
            self.policyValue = Self.policy(limits, request)
        }
        headers.add(name: "ratelimit-policy", value: self.policyValue)
        headers.add(name: "ratelimit", value: Self.limit(limits, request))
    }

    static func policy(_ limits: GateLimits, _ request: GateRequest) -> String {
        var value = ""
        for (name, item) in [(request.quotaFieldName, limits.quota), (request.rateFieldName, limits.rate)] {
            guard let item else { continue }
            if !value.isEmpty { value += ", " }
            value += name
            value += ";q="
            value += String(RateLimitHeaders.sfInteger(item.quota))
            if let window = item.windowSeconds {
                value += ";w="
                value += String(RateLimitHeaders.sfInteger(window))
            }
        }
        return value
    }

    static func limit(_ limits: GateLimits, _ request: GateRequest) -> String {
        var value = ""
        value.reserveCapacity(64)
        if let quota = limits.quota { append(&value, request.quotaFieldName, quota) }
        if let rate = limits.rate {
            if !value.isEmpty { value += ", " }
            append(&value, request.rateFieldName, rate)
        }
        return value
    }

    private static func append(_ value: inout String, _ name: String, _ item: GateLimits.Item) {
        value += name
        value += ";r="
        value += String(RateLimitHeaders.sfInteger(item.remaining))
        value += ";t="
        value += String(RateLimitHeaders.sfInteger(item.resetSeconds))
    }
}
