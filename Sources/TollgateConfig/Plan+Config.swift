import TollgateCore

/// Reads the `plans:` section into core `Plan`s.
///
/// Prices are decimal amounts of the asset (`price: "0.01"` is 10,000 atomic units of USDC),
/// parsed exactly; `price_atomic: 10000` gives atomic units directly. A price with more decimals
/// than the asset has is refused rather than rounded.
struct PlanParser {
    let decimals: Int

    func plans(_ node: ConfigNode) throws(ConfigError) -> [String: Plan] {
        let map = try node.mapping()
        var plans: [String: Plan] = [:]
        for name in map.keys {
            let planNode = try map.required(name)
            guard name.isIdentifier else { throw planNode.error(.invalidValue, "plan names use letters, digits, - and _") }
            plans[name] = try plan(named: name, planNode)
        }
        try map.finish()
        guard !plans.isEmpty else { throw node.error(.invalidValue, "at least one plan is required") }
        return plans
    }

    func plan(named name: String, _ node: ConfigNode) throws(ConfigError) -> Plan {
        let map = try node.mapping()
        let featuresNode = try map.required("features")
        let featureMap = try featuresNode.mapping()
        var features: [FeatureName: Feature] = [:]
        for featureName in featureMap.keys {
            let featureNode = try featureMap.required(featureName)
            guard featureName.isIdentifier else {
                throw featureNode.error(.invalidValue, "feature names use letters, digits, - and _")
            }
            features[FeatureName(featureName)] = try feature(featureNode)
        }
        try featureMap.finish()
        guard !features.isEmpty else { throw featuresNode.error(.invalidValue, "a plan needs at least one feature") }
        let rate = try map.optional("rate").map { node throws(ConfigError) in try rateTier(node) }
        try map.finish()
        return Plan(name: name, features: features, rateTier: rate)
    }

    func feature(_ node: ConfigNode) throws(ConfigError) -> Feature {
        let map = try node.mapping()
        if let enabled = map.optional("enabled") {
            let value = try enabled.bool()
            try map.finish()
            return .boolean(enabled: value)
        }
        var feature = MeteredFeature(limit: try map.required("limit").uint64())
        if let value = map.optional("unit") { feature.unit = try value.nonEmptyString() }
        if let value = map.optional("reset") { feature.reset = try value.choice(ResetSchedule.self) }
        if let value = map.optional("policy") { feature.policy = try policy(value) }
        if let value = map.optional("mode") { feature.quotaMode = try value.choice(QuotaMode.self) }
        if let value = map.optional("when_unreachable") {
            feature.whenCollectorUnreachable = try value.choice(CollectorUnreachablePolicy.self)
        }
        try map.finish()
        return .metered(feature)
    }

    /// `block`, or `{payment_required: {...}}`, or `{overage: {...}}`.
    func policy(_ node: ConfigNode) throws(ConfigError) -> OverQuotaPolicy {
        if case .scalar = node.node {
            guard try node.string() == "block" else {
                throw node.error(.invalidValue, "expected block, or a mapping with payment_required or overage")
            }
            return .block
        }
        let map = try node.mapping()
        let result: OverQuotaPolicy
        if let paid = map.optional("payment_required") {
            let (price, buys) = try paymentTerms(paid)
            result = .paymentRequired(price: price, buys: buys)
        } else if let overageNode = map.optional("overage") {
            let overage = try overageNode.mapping()
            let perUnits = try overage.optional("per").map { n throws(ConfigError) in try n.uint64() } ?? 1
            guard perUnits > 0 else { throw overageNode.error(.invalidValue, "per must be at least 1") }
            let price = UnitPrice(price: try money(overage, "price", required: true)!, perUnits: perUnits)
            let cap = try money(overage, "spend_cap", required: false)
            var fallback = OverageFallback.block
            if let fallbackNode = overage.optional("fallback") {
                switch try policy(fallbackNode) {
                case .block: fallback = .block
                case .paymentRequired(let price, let buys): fallback = .paymentRequired(price: price, buys: buys)
                case .overage: throw fallbackNode.error(.invalidValue, "fallback is block or payment_required")
                }
            }
            try overage.finish()
            result = .overage(price: price, spendCap: cap, fallback: fallback)
        } else {
            throw node.error(.invalidValue, "expected payment_required or overage")
        }
        try map.finish()
        return result
    }

    /// `{price, buys: call | {units: N} | {refill: N}}`.
    func paymentTerms(_ node: ConfigNode) throws(ConfigError) -> (Money, PaymentGrant) {
        let map = try node.mapping()
        let price = try money(map, "price", required: true)!
        guard !price.isZero else { throw node.error(.invalidValue, "a payment price must be above zero") }
        var buys = PaymentGrant.singleCall
        if let buysNode = map.optional("buys") {
            if case .scalar = buysNode.node {
                guard try buysNode.string() == "call" else {
                    throw buysNode.error(.invalidValue, "expected call, {units: N} or {refill: N}")
                }
            } else {
                let grant = try buysNode.mapping()
                if let units = grant.optional("units") {
                    let n = try units.uint64()
                    guard n > 0 else { throw units.error(.invalidValue, "a pack holds at least 1 unit") }
                    buys = .units(n)
                } else if let refill = grant.optional("refill") {
                    let n = try refill.uint64()
                    guard n > 0 else { throw refill.error(.invalidValue, "a refill adds at least 1 token") }
                    buys = .bucketRefill(tokens: n)
                } else {
                    throw buysNode.error(.invalidValue, "expected call, {units: N} or {refill: N}")
                }
                try grant.finish()
            }
        }
        try map.finish()
        return (price, buys)
    }

    func rateTier(_ node: ConfigNode) throws(ConfigError) -> RateTier {
        let map = try node.mapping()
        let capacity = try map.required("capacity").uint64()
        let refillNode = try map.required("refill")
        let refill = try refillNode.uint64()
        let perSeconds = try map.optional("per_seconds").map { n throws(ConfigError) in try n.uint64() } ?? 1
        guard capacity > 0 else { throw node.error(.invalidValue, "capacity must be at least 1") }
        guard refill > 0, perSeconds > 0 else { throw refillNode.error(.invalidValue, "refill and per_seconds must be at least 1") }
        var paid: PaidRefill?
        if let paidNode = map.optional("paid_refill") {
            let paidMap = try paidNode.mapping()
            let price = try money(paidMap, "price", required: true)!
            let tokens = try paidMap.required("tokens").uint64()
            guard tokens > 0, !price.isZero else { throw paidNode.error(.invalidValue, "price and tokens must be above zero") }
            try paidMap.finish()
            paid = PaidRefill(price: price, tokens: tokens)
        }
        let name = try map.optional("name")?.nonEmptyString() ?? "rate"
        try map.finish()
        return RateTier(name: name, capacity: capacity, refill: RefillRate(tokens: refill, perSeconds: perSeconds), paidRefill: paid)
    }

    /// `name: "0.01"` (decimal, exact) or `name_atomic: 10000`.
    func money(_ map: ConfigMapping, _ name: String, required: Bool) throws(ConfigError) -> Money? {
        let decimal = map.optional(name)
        let atomic = map.optional("\(name)_atomic")
        switch (decimal, atomic) {
        case (nil, nil):
            if required {
                throw ConfigError(.missingKey, path: map.owner.path + ".\(name)", location: map.owner.location, "is required (or \(name)_atomic)")
            }
            return nil
        case (let node?, nil):
            let text = try node.nonEmptyString()
            do {
                return try Money(decimal: text, decimals: decimals)
            } catch {
                throw node.error(.invalidValue, "\"\(text)\" is not an amount with at most \(decimals) decimals")
            }
        case (nil, let node?):
            return Money(atomicUnits: try node.uint64())
        case (_, let node?):
            throw node.error(.inconsistent, "set \(name) or \(name)_atomic, not both")
        }
    }
}

extension ConfigNode {
    /// One of an enum's raw values; the error lists them.
    func choice<T: RawRepresentable & CaseIterable>(_: T.Type) throws(ConfigError) -> T where T.RawValue == String {
        let text = try nonEmptyString()
        guard let value = T(rawValue: text) else {
            throw error(.invalidValue, "expected one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(text)\"")
        }
        return value
    }
}

extension String {
    var isIdentifier: Bool {
        !isEmpty && utf8.count <= 64 && utf8.allSatisfy { c in
            (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x2D || c == 0x5F
        }
    }
}
