/// The IETF `RateLimit-Policy` and `RateLimit` response fields, in the Structured Fields syntax of
/// draft-ietf-httpapi-ratelimit-headers-10 (unchanged in -11): each policy is a List member whose
/// bare item is a quoted String naming it, e.g.
/// `RateLimit-Policy: "api_call";q=10000;w=86400` and `RateLimit: "api_call";r=42;t=3600`.
public struct RateLimitHeaders: Sendable, Hashable, Codable {
    /// One quota policy: `q` units per `w` seconds.
    public struct Policy: Sendable, Hashable, Codable {
        /// The policy's name (a feature name or a rate tier name).
        public var name: String
        /// The quota `q`.
        public var quota: UInt64
        /// The window `w` in seconds, if the policy has one.
        public var windowSeconds: UInt64?

        /// Creates a policy item.
        public init(name: String, quota: UInt64, windowSeconds: UInt64?) {
            self.name = name
            self.quota = quota
            self.windowSeconds = windowSeconds
        }
    }

    /// The current state of one policy: `r` remaining, reset in `t` seconds.
    public struct Limit: Sendable, Hashable, Codable {
        /// The policy's name.
        public var name: String
        /// Remaining units `r`.
        public var remaining: UInt64
        /// Seconds until the quota resets `t`.
        public var resetSeconds: UInt64

        /// Creates a limit item.
        public init(name: String, remaining: UInt64, resetSeconds: UInt64) {
            self.name = name
            self.remaining = remaining
            self.resetSeconds = resetSeconds
        }
    }

    /// The policies, in order.
    public var policies: [Policy]
    /// The current limits, in order.
    public var limits: [Limit]

    /// Creates header content.
    public init(policies: [Policy] = [], limits: [Limit] = []) {
        self.policies = policies
        self.limits = limits
    }

    /// No fields.
    public static let none = RateLimitHeaders()

    /// Whether there is nothing to send.
    public var isEmpty: Bool { policies.isEmpty && limits.isEmpty }

    /// Both sets of items, `self` first (a request subject to a quota and a rate tier reports both).
    public func merging(_ other: RateLimitHeaders) -> RateLimitHeaders {
        RateLimitHeaders(policies: policies + other.policies, limits: limits + other.limits)
    }

    /// The `RateLimit-Policy` field value, or nil when there are no policies.
    public var policyFieldValue: String? {
        policies.isEmpty ? nil : policies.map { p in
            var item = Self.sfString(p.name) + ";q=\(Self.sfInteger(p.quota))"
            if let w = p.windowSeconds { item += ";w=\(Self.sfInteger(w))" }
            return item
        }.joined(separator: ", ")
    }

    /// The `RateLimit` field value, or nil when there are no limits.
    public var limitFieldValue: String? {
        limits.isEmpty ? nil : limits.map { l in
            Self.sfString(l.name) + ";r=\(Self.sfInteger(l.remaining));t=\(Self.sfInteger(l.resetSeconds))"
        }.joined(separator: ", ")
    }

    /// The fields to add to a response, as (name, value) pairs.
    public var fields: [HeaderField] {
        var result: [HeaderField] = []
        if let v = policyFieldValue { result.append(HeaderField(name: "RateLimit-Policy", value: v)) }
        if let v = limitFieldValue { result.append(HeaderField(name: "RateLimit", value: v)) }
        return result
    }

    /// An sf-string: printable ASCII only, with `"` and `\` escaped; anything else becomes `_` so a
    /// strange feature name can never produce an invalid header.
    public static func sfString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"", "\\": out += "\\" + String(scalar)
            case " "..."~": out.unicodeScalars.append(scalar)
            default: out += "_"
            }
        }
        return out + "\""
    }

    /// An sf-integer holds at most 15 digits (RFC 9651 §3.3.1); larger values are clamped.
    public static func sfInteger(_ v: UInt64) -> UInt64 { Swift.min(v, 999_999_999_999_999) }
}

/// A response header field.
public struct HeaderField: Sendable, Hashable, Codable {
    /// The field name.
    public var name: String
    /// The field value.
    public var value: String

    /// Creates a field.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
