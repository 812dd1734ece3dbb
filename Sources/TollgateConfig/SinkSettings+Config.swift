import Foundation

extension SinkSettings {
    /// Reads `collector.sinks`: `queue_capacity`, `audit`, `stripe`.
    static func parse(_ node: ConfigNode, environment: ConfigEnvironment) throws(ConfigError) -> SinkSettings {
        let map = try node.mapping()
        var settings = SinkSettings()
        if let value = map.optional("queue_capacity") { settings.queueCapacity = try value.int(in: 1...10_000_000) }
        if let value = map.optional("audit") { settings.audit = try AuditLogSettings.parse(value) }
        if let value = map.optional("stripe") { settings.stripe = try StripeSettings.parse(value, environment: environment) }
        try map.finish()
        return settings
    }
}

extension AuditLogSettings {
    static func parse(_ node: ConfigNode) throws(ConfigError) -> AuditLogSettings {
        let map = try node.mapping()
        let pathNode = try map.required("path")
        let path = try pathNode.nonEmptyString()
        guard !path.hasSuffix("/"), !path.utf8.contains(0) else {
            throw pathNode.error(.invalidValue, "expected a file path, got \"\(path)\"")
        }
        var settings = AuditLogSettings(path: path)
        if let value = map.optional("max_bytes") { settings.maxBytes = try value.int(in: 4_096...(1 << 40)) }
        if let value = map.optional("files") { settings.files = try value.int(in: 0...1_000) }
        try map.finish()
        return settings
    }
}

extension StripeSettings {
    static func parse(_ node: ConfigNode, environment: ConfigEnvironment) throws(ConfigError) -> StripeSettings {
        let map = try node.mapping()
        guard let secret = try map.secret("secret_key", in: environment) else {
            throw ConfigError(.missingKey, path: node.path + ".secret_key_env", location: node.location,
                              "is required: the Stripe secret key, from an environment variable")
        }
        guard !secret.isEmpty, secret.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw node.error(.invalidValue, "the Stripe secret key is empty or holds spaces or control characters")
        }
        let metersNode = try map.required("meters")
        let metersMap = try metersNode.mapping()
        var meters: [String: StripeMeterSettings] = [:]
        var eventNames: Set<String> = []
        for feature in metersMap.keys {
            let featureNode = try metersMap.required(feature)
            guard feature.isIdentifier else { throw featureNode.error(.invalidValue, "feature names use letters, digits, - and _") }
            let meter = try StripeMeterSettings.parse(featureNode)
            for name in [meter.eventName] + (meter.overageEventName.map { [$0] } ?? []) {
                guard eventNames.insert(name).inserted else {
                    throw featureNode.error(.inconsistent, "event name \"\(name)\" is used by two meters")
                }
            }
            meters[feature] = meter
        }
        try metersMap.finish()
        guard !meters.isEmpty else { throw metersNode.error(.invalidValue, "needs at least one feature") }
        var settings = StripeSettings(secretKey: secret, meters: meters)
        if let value = map.optional("base_url") { settings.baseURL = try value.baseURL() }
        if let value = map.optional("customers") {
            let customers = try value.mapping()
            for key in customers.keys {
                let customerNode = try customers.required(key)
                let customer = try customerNode.nonEmptyString()
                guard customer.isIdentifier else {
                    throw customerNode.error(.invalidValue, "a Stripe customer id uses letters, digits and _ (cus_...), got \"\(customer)\"")
                }
                settings.customers[key] = customer
            }
            try customers.finish()
        }
        if let value = map.optional("max_requests_per_second") { settings.maxRequestsPerSecond = try value.int(in: 1...10_000) }
        if let value = map.optional("concurrency") { settings.concurrency = try value.int(in: 1...64) }
        if let value = map.optional("flush_interval_ms") { settings.flushIntervalMs = try value.int(in: 10...3_600_000) }
        if let value = map.optional("timeout_ms") { settings.timeoutMs = try value.int(in: 100...120_000) }
        if let value = map.optional("max_attempts") { settings.maxAttempts = try value.int(in: 1...100) }
        if let value = map.optional("retry_initial_ms") { settings.retryInitialMs = try value.int(in: 1...600_000) }
        if let value = map.optional("retry_max_ms") { settings.retryMaxMs = try value.int(in: 1...3_600_000) }
        if let value = map.optional("claim_ttl_ms") { settings.claimTTLMs = try value.int(in: 1_000...3_600_000) }
        if let value = map.optional("rescan_interval_seconds") { settings.rescanIntervalSeconds = try value.int(in: 1...86_400) }
        try map.finish()
        guard settings.retryMaxMs >= settings.retryInitialMs else {
            throw node.error(.inconsistent, "retry_max_ms must be at least retry_initial_ms")
        }
        return settings
    }
}

extension StripeMeterSettings {
    /// `{event_name: X, overage_event_name: Y}`, or just the event name as a string.
    static func parse(_ node: ConfigNode) throws(ConfigError) -> StripeMeterSettings {
        if case .scalar = node.node { return StripeMeterSettings(eventName: try node.eventName()) }
        let map = try node.mapping()
        var meter = StripeMeterSettings(eventName: try map.required("event_name").eventName())
        if let value = map.optional("overage_event_name") { meter.overageEventName = try value.eventName() }
        try map.finish()
        return meter
    }
}

extension ConfigNode {
    /// A Stripe meter event name: 1 to 100 of letters, digits, `_`, `-` and `.`.
    func eventName() throws(ConfigError) -> String {
        let value = try nonEmptyString()
        let allowed = value.utf8.allSatisfy { c in
            (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x2D || c == 0x5F || c == 0x2E
        }
        guard allowed, value.utf8.count <= 100 else {
            throw error(.invalidValue, "an event name is 1 to 100 letters, digits, _, - and ., got \"\(value)\"")
        }
        return value
    }

    /// An `http://` or `https://` URL with a host and no query or fragment; the trailing `/` is dropped.
    func baseURL() throws(ConfigError) -> String {
        let text = try nonEmptyString()
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty, url.query == nil, url.fragment == nil, url.user == nil
        else {
            throw error(.invalidValue, "expected an http:// or https:// URL with a host and no query, such as https://api.stripe.com, got \"\(text)\"")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }
}
