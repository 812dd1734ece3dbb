import Foundation
import TollgateCore
import TollgateX402
import Yams

/// Everything a collector or sidecar reads from its YAML file, validated.
///
/// ```swift
/// let config = try TollgateConfiguration.load(path: "deploy/tollgate.example.yaml")
/// let free = config.plans["free"]
/// ```
///
/// Every key is documented in `deploy/tollgate.example.yaml`. Errors name the dotted key path and
/// the line, and say why the value is refused.
public struct TollgateConfiguration: Sendable {
    /// The collector's own settings (`collector:`).
    public var collector = CollectorSettings()
    /// The sidecar's own settings (`sidecar:`).
    public var sidecar = SidecarSettings()
    /// Redis, for collectors (`redis:`).
    public var redis = RedisSettings()
    /// ZeroMQ transport (`zeromq:`).
    public var zeromq = ZeroMQSettings()
    /// x402 payments (`x402:`); required when any policy asks for payment.
    public var x402: X402Settings?
    /// Plans by name (`plans:`).
    public var plans: [String: Plan] = [:]
    /// API keys, hashed (`keys:`).
    public var keys: [KeyRecord] = []

    /// An empty configuration with defaults; `plans` must be filled before use.
    public init() {}

    /// Reads and validates a YAML file.
    public static func load(path: String, environment: ConfigEnvironment = .process) throws(ConfigError) -> TollgateConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(.unreadable, path: "", location: path, "cannot read the file: \(error.localizedDescription)")
        }
        do {
            return try parse(yaml: text, environment: environment)
        } catch {
            var located = error
            located.location = "\(path)" + (error.location.map { ":\($0)" } ?? "")
            throw located
        }
    }

    /// Parses and validates YAML text.
    public static func parse(yaml: String, environment: ConfigEnvironment = .process) throws(ConfigError) -> TollgateConfiguration {
        guard yaml.utf8.count <= 16 << 20 else {
            throw ConfigError(.invalidValue, path: "", "the file is larger than 16 MiB")
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigError(.syntax, path: "", "the file is empty")
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(.syntax, path: "", "not valid YAML: \(error)")
        }
        return try parse(ConfigNode(node: root, path: ""), environment: environment)
    }

    static func parse(_ root: ConfigNode, environment: ConfigEnvironment) throws(ConfigError) -> TollgateConfiguration {
        let map = try root.mapping()
        var config = TollgateConfiguration()
        if let node = map.optional("collector") { config.collector = try CollectorSettings.parse(node, environment: environment) }
        if let node = map.optional("sidecar") { config.sidecar = try SidecarSettings.parse(node) }
        if let node = map.optional("redis") { config.redis = try RedisSettings.parse(node, environment: environment) }
        if let node = map.optional("zeromq") { config.zeromq = try ZeroMQSettings.parse(node, environment: environment) }
        if let node = map.optional("x402") { config.x402 = try X402Settings.parse(node, environment: environment) }
        let parser = PlanParser(decimals: config.x402?.decimals ?? 6)
        config.plans = try parser.plans(try map.required("plans"))
        if let keysNode = map.optional("keys") {
            config.keys = try keysNode.sequence().map { node throws(ConfigError) in try parser.key(node, environment: environment) }
            try config.checkKeys(keysNode)
        }
        try map.finish()
        try config.checkCrossReferences(root)
        return config
    }

    private func checkKeys(_ node: ConfigNode) throws(ConfigError) {
        var seen: [String: String] = [:]
        for (index, key) in keys.enumerated() {
            let path = "\(node.path)[\(index)]"
            if let other = seen[key.id] {
                throw ConfigError(.inconsistent, path: path, location: node.location, "the same API key as \(other)")
            }
            seen[key.id] = key.name
            guard let plan = plans[key.plan] else {
                throw ConfigError(.inconsistent, path: path + ".plan", location: node.location, "no plan named \"\(key.plan)\" (plans: \(plans.keys.sorted().joined(separator: ", ")))")
            }
            let unknown = key.overrides.unknownFeatures(in: plan).map(\.rawValue)
            if let first = unknown.first {
                throw ConfigError(.inconsistent, path: path + ".overrides", location: node.location, "plan \(plan.name) has no metered feature \(first)")
            }
            for name in key.overrides.enabled.keys {
                guard case .boolean = plan.features[name] else {
                    throw ConfigError(.inconsistent, path: path + ".overrides.enabled", location: node.location, "plan \(plan.name) has no boolean feature \(name)")
                }
            }
        }
    }

    /// Room a SETTLE frame needs beside a kept response (payment header, ids, route, framing).
    static let paymentFrameHeadroom = 64 * 1_024

    private func checkCrossReferences(_ root: ConfigNode) throws(ConfigError) {
        if let anonymous = sidecar.anonymousPlan, plans[anonymous] == nil {
            throw ConfigError(.inconsistent, path: "sidecar.anonymous_plan", "no plan named \"\(anonymous)\"")
        }
        if let x402, x402.idempotencyMaxResponseBytes + Self.paymentFrameHeadroom > zeromq.maxFrameBytes {
            throw ConfigError(.inconsistent, path: "x402.idempotency.max_response_bytes",
                              "a kept response travels in one ZeroMQ frame: at most zeromq.max_frame_bytes (\(zeromq.maxFrameBytes)) - \(Self.paymentFrameHeadroom)")
        }
        guard x402 == nil else { return }
        let policies = plans.values.flatMap { plan in
            plan.features.values.compactMap { feature -> OverQuotaPolicy? in
                if case .metered(let metered) = feature { metered.policy } else { nil }
            }
        } + keys.flatMap { $0.overrides.policies.values }
        let asksForPayment = policies.contains { policy in
            switch policy {
            case .block: false
            case .paymentRequired: true
            case .overage(_, _, let fallback): fallback != .block
            }
        } || plans.values.contains { $0.rateTier?.paidRefill != nil }
        if asksForPayment {
            throw ConfigError(.missingKey, path: "x402", "a plan asks for payment, so the x402 section is required")
        }
    }
}
