import Crypto
import TollgateCore

/// An API key as Tollgate stores it: hashed, with its plan and per-key overrides.
public struct KeyRecord: Hashable, Sendable {
    /// Hex SHA-256 of the API key. The key itself is never stored, logged or sent.
    public var id: String
    /// A human name for dashboards and the CLI (`demo-free`); never the key.
    public var name: String
    /// The plan's name.
    public var plan: String
    /// Values this key has instead of its plan's.
    public var overrides: KeyOverrides
    /// The Stripe customer billed for this key, when billing is on.
    public var stripeCustomer: String?

    /// Creates a record.
    public init(id: String, name: String, plan: String, overrides: KeyOverrides = KeyOverrides(), stripeCustomer: String? = nil) {
        self.id = id
        self.name = name
        self.plan = plan
        self.overrides = overrides
        self.stripeCustomer = stripeCustomer
    }
}

/// Turns API keys into key ids.
public enum APIKeyHasher {
    /// Hex SHA-256 of the key's UTF-8 bytes: the id under which Redis and the wire know the key.
    public static func keyID(for apiKey: String) -> String {
        let digest = SHA256.hash(data: Array(apiKey.utf8))
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether text has the shape of a key id (64 lowercase hex digits).
    public static func isKeyID(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

extension PlanParser {
    /// Reads one entry of `keys:`: `key`, `key_env` or `key_sha256`, plus plan and overrides.
    func key(_ node: ConfigNode, environment: ConfigEnvironment) throws(ConfigError) -> KeyRecord {
        let map = try node.mapping()
        let clear = try map.secret("key", in: environment)
        let hashedNode = map.optional("key_sha256")
        let id: String
        switch (clear, hashedNode) {
        case (let key?, nil):
            guard key.utf8.count >= 8 else { throw node.error(.invalidValue, "an API key must be at least 8 characters") }
            id = APIKeyHasher.keyID(for: key)
        case (nil, let hashed?):
            let text = try hashed.nonEmptyString().lowercased()
            guard APIKeyHasher.isKeyID(text) else { throw hashed.error(.invalidValue, "expected 64 hex digits (SHA-256 of the key)") }
            id = text
        case (nil, nil):
            throw node.error(.missingKey, "a key needs key, key_env or key_sha256")
        case (_?, _?):
            throw node.error(.inconsistent, "set one of key, key_env and key_sha256")
        }
        let name = try map.optional("name")?.nonEmptyString() ?? String(id.prefix(12))
        let plan = try map.required("plan").nonEmptyString()
        var overrides = KeyOverrides()
        if let value = map.optional("billing_anchor") {
            do {
                overrides.billingAnchor = try UTCDateTime.parseRFC3339(try value.nonEmptyString())
            } catch let error as ConfigError {
                throw error
            } catch {
                throw value.error(.invalidValue, "expected an RFC 3339 UTC time such as 2026-01-31T00:00:00Z")
            }
        }
        if let value = map.optional("overrides") { try applyOverrides(value, to: &overrides) }
        let stripe = try map.optional("stripe_customer")?.nonEmptyString()
        try map.finish()
        return KeyRecord(id: id, name: name, plan: plan, overrides: overrides, stripeCustomer: stripe)
    }

    /// `{limits: {feature: N}, enabled: {feature: bool}, policies: {feature: policy}, modes: {...}, rate: {...} | none}`.
    func applyOverrides(_ node: ConfigNode, to overrides: inout KeyOverrides) throws(ConfigError) {
        let map = try node.mapping()
        if let limits = map.optional("limits") {
            let m = try limits.mapping()
            for name in m.keys { overrides.limits[FeatureName(name)] = try m.required(name).uint64() }
            try m.finish()
        }
        if let enabled = map.optional("enabled") {
            let m = try enabled.mapping()
            for name in m.keys { overrides.enabled[FeatureName(name)] = try m.required(name).bool() }
            try m.finish()
        }
        if let policies = map.optional("policies") {
            let m = try policies.mapping()
            for name in m.keys { overrides.policies[FeatureName(name)] = try policy(try m.required(name)) }
            try m.finish()
        }
        if let modes = map.optional("modes") {
            let m = try modes.mapping()
            for name in m.keys { overrides.quotaModes[FeatureName(name)] = try m.required(name).choice(QuotaMode.self) }
            try m.finish()
        }
        if let rate = map.optional("rate") {
            if case .scalar = rate.node, try rate.string() == "none" {
                overrides.removesRateTier = true
            } else {
                overrides.rateTier = try rateTier(rate)
            }
        }
        try map.finish()
    }
}
