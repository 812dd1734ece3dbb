import TollgateX402

extension X402Settings {
    static func parse(_ node: ConfigNode, environment: ConfigEnvironment) throws(ConfigError) -> X402Settings {
        let map = try node.mapping()
        let networkNode = try map.required("network")
        guard let network = X402Network(try networkNode.nonEmptyString()) else {
            throw networkNode.error(.invalidValue, "expected a CAIP-2 network such as eip155:84532, or a v1 name such as base-sepolia")
        }
        func address(_ key: String) throws(ConfigError) -> EVMAddress {
            let node = try map.required(key)
            guard let address = EVMAddress(try node.nonEmptyString()) else {
                throw node.error(.invalidValue, "expected 0x followed by 40 hex digits")
            }
            return address
        }
        let asset = try address("asset")
        let payTo = try address("pay_to")
        let extra = try map.required("extra").mapping()
        let extraName = try extra.required("name").nonEmptyString()
        let extraVersion = try extra.required("version").nonEmptyString()
        try extra.finish()
        let facilitatorNode = try map.required("facilitator")
        let facilitator = try facilitatorNode.mapping()
        let urlNode = try facilitator.required("url")
        let url = try urlNode.nonEmptyString()
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw urlNode.error(.invalidValue, "expected an http:// or https:// URL")
        }
        var settings = X402Settings(
            network: network, asset: asset, payTo: payTo,
            extraName: extraName, extraVersion: extraVersion,
            facilitatorURL: url.hasSuffix("/") ? String(url.dropLast()) : url
        )
        settings.facilitatorAuthorization = try facilitator.secret("authorization", in: environment)
        if let value = facilitator.optional("timeout_ms") { settings.facilitatorTimeoutMs = try value.int(in: 1...120_000) }
        try facilitator.finish()
        if let value = map.optional("decimals") { settings.decimals = try value.int(in: 0...36) }
        if let value = map.optional("max_timeout_seconds") { settings.maxTimeoutSeconds = try value.int(in: 1...86_400) }
        if let node = map.optional("idempotency") {
            let idempotency = try node.mapping()
            // At least a minute: the id stays claimed this long while its first attempt is in flight.
            if let value = idempotency.optional("ttl_seconds") { settings.idempotencyTTLSeconds = try value.int(in: 60...(30 * 86_400)) }
            if let value = idempotency.optional("max_response_bytes") {
                settings.idempotencyMaxResponseBytes = try value.int(in: 0...X402Settings.idempotencyResponseCeiling)
            }
            try idempotency.finish()
        }
        try map.finish()
        return settings
    }
}
