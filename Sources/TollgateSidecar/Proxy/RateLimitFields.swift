import NIOCore
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
        headers.add(name: "ratelimit-policy", value: self.policy(limits, for: request))
        headers.add(name: "ratelimit", value: Self.limit(limits, request))
    }

    /// Writes both fields as lines of a response head (what a forwarded response carries); nothing
    /// when there are no figures. The numbers are written as digits, with no string made.
    mutating func write(_ limits: GateLimits, for request: GateRequest, into buffer: inout ByteBuffer) {
        guard !limits.isEmpty else { return }
        buffer.writeStaticString("ratelimit-policy: ")
        buffer.writeString(self.policy(limits, for: request))
        buffer.writeStaticString("\r\nratelimit: ")
        Self.writeLimit(limits, request, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    private static func writeLimit(_ limits: GateLimits, _ request: GateRequest, into buffer: inout ByteBuffer) {
        if let quota = limits.quota { Self.write(request.quotaFieldName, quota, into: &buffer) }
        if let rate = limits.rate {
            if limits.quota != nil { buffer.writeStaticString(", ") }
            Self.write(request.rateFieldName, rate, into: &buffer)
        }
    }

    /// The policy value, kept while the request and its figures stay the same.
    private mutating func policy(_ limits: GateLimits, for request: GateRequest) -> String {
        let key = PolicyKey(request: request, quota: limits.quota?.quota, quotaWindow: limits.quota?.windowSeconds,
                            rate: limits.rate?.quota, rateWindow: limits.rate?.windowSeconds)
        if key != self.policyKey {
            self.policyKey = key
            self.policyValue = Self.policy(limits, request)
        }
        return self.policyValue
    }

    private static func write(_ name: String, _ item: GateLimits.Item, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(";r=")
        buffer.writeDecimal(RateLimitHeaders.sfInteger(item.remaining))
        buffer.writeStaticString(";t=")
        buffer.writeDecimal(RateLimitHeaders.sfInteger(item.resetSeconds))
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

    /// The `RateLimit` value, as `write` writes it.
    static func limit(_ limits: GateLimits, _ request: GateRequest) -> String {
        var buffer = ByteBuffer()
        Self.writeLimit(limits, request, into: &buffer)
        return String(buffer: buffer)
    }
}

extension ByteBuffer {
    /// Writes `value` in decimal digits.
    mutating func writeDecimal(_ value: UInt64) {
        guard value >= 10 else {
            self.writeInteger(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes: room for 20 digits
        withUnsafeMutableBytes(of: &digits) { raw in
            var index = raw.count
            var rest = value
            while rest > 0 {
                index -= 1
                raw[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            self.writeBytes(UnsafeRawBufferPointer(rebasing: raw[index...]))
        }
    }
}
