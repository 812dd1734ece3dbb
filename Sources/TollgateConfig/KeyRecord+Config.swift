import TollgateCore

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
