import Foundation
import Testing
import TollgateConfig
import TollgateCore
import TollgateX402

/// Minimal valid document; tests splice their own sections in.
private let plansYAML = """
plans:
  free:
    features:
      api_call: {limit: 1000, reset: day}
"""

private func parse(_ yaml: String, env: [String: String] = [:]) throws(ConfigError) -> TollgateConfiguration {
    try TollgateConfiguration.parse(yaml: yaml, environment: ConfigEnvironment(env))
}

/// Parses and returns the error, failing the test when the document is accepted.
private func failure(_ yaml: String, env: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
    do {
        _ = try parse(yaml, env: env)
        Issue.record("configuration was accepted", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

@Suite struct ConfigTests {
    @Test func exampleConfigInDeployLoads() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../deploy/tollgate.example.yaml").standardized.path
        let config = try TollgateConfiguration.load(
            path: path,
            environment: ConfigEnvironment(["TOLLGATE_ADMIN_TOKEN": "0123456789abcdef-admin", "TOLLGATE_DEMO_FREE_KEY": "tg_demo_free_key"])
        )
        #expect(config.plans.keys.sorted() == ["free", "payg", "pro"])
        #expect(config.keys.count == 2)
        #expect(config.keys[0].id == APIKeyHasher.keyID(for: "tg_demo_free_key"))
        #expect(config.keys[1].overrides.limits[.apiCall] == 200_000)
        #expect(config.x402?.network.v1Name == "base-sepolia")
        #expect(config.x402?.extraName == "USDC")
        guard case .metered(let pro)? = config.plans["pro"]?.features[.apiCall],
              case .overage(let price, let cap, .block) = pro.policy
        else { Issue.record("pro api_call is not overage with block fallback"); return }
        #expect(price == UnitPrice(price: Money(atomicUnits: 1_000), perUnits: 1_000))
        #expect(cap == Money(atomicUnits: 50_000_000))
        guard case .metered(let payg)? = config.plans["payg"]?.features[.apiCall],
              case .paymentRequired(let payPrice, .units(100)) = payg.policy
        else { Issue.record("payg api_call is not payment_required for a pack"); return }
        #expect(payPrice.atomicUnits == 10_000)
        #expect(config.plans["payg"]?.rateTier?.paidRefill == PaidRefill(price: Money(atomicUnits: 1_000), tokens: 4))
        #expect(config.plans["free"]?.features["export"] == .boolean(enabled: false))
    }

    @Test func defaultsApplyWhenSectionsAreAbsent() throws {
        let config = try parse(plansYAML)
        #expect(config.redis.port == 6379)
        #expect(config.collector.routerBind == "tcp://127.0.0.1:7401")
        #expect(config.zeromq.maxFrameBytes == 4 << 20)
        guard case .metered(let feature)? = config.plans["free"]?.features[.apiCall] else {
            Issue.record("api_call missing"); return
        }
        #expect(feature.policy == .block)
        #expect(feature.reset == .day)
        #expect(feature.quotaMode == .strict)
        #expect(feature.whenCollectorUnreachable == .failClosed)
    }

    @Test func keysAreStoredOnlyAsSHA256() throws {
        let config = try parse(plansYAML + """

        keys:
          - {key: "tg_live_secret_1", plan: free, name: a}
          - {key_env: KEY_B, plan: free}
          - {key_sha256: "\(String(repeating: "AB", count: 32))", plan: free}
        """, env: ["KEY_B": "tg_live_secret_2"])
        // Known vector: SHA-256("abc").
        #expect(APIKeyHasher.keyID(for: "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(config.keys.map(\.id) == [
            APIKeyHasher.keyID(for: "tg_live_secret_1"),
            APIKeyHasher.keyID(for: "tg_live_secret_2"),
            String(repeating: "ab", count: 32),
        ])
        #expect(config.keys[1].name == String(config.keys[1].id.prefix(12)))
        let dump = String(describing: config.keys)
        #expect(!dump.contains("tg_live_secret"))
    }

    @Test func errorsNameTheFieldAndSayWhy() {
        let cases: [(String, ConfigError.Code, String, String)] = [
            ("plans:\n  free:\n    features:\n      api_call: {limit: ten}\n",
             .invalidValue, "plans.free.features.api_call.limit", "non-negative integer"),
            ("plans:\n  free:\n    features:\n      api_call: {limit: 10, reset: fortnight}\n",
             .invalidValue, "plans.free.features.api_call.reset", "minute, hour, day, week, month, billing_cycle"),
            ("plans:\n  free:\n    features:\n      api_call: {limt: 10}\n",
             .missingKey, "plans.free.features.api_call.limit", "required"),
            (plansYAML + "\nredis: {port: 70000}\n", .invalidValue, "redis.port", "between 1 and 65535"),
            (plansYAML + "\nredis: {prot: 6379}\n", .unknownKey, "redis.prot", "did you mean port?"),
            (plansYAML + "\nkeys:\n  - {key: abcdefgh123, plan: gold}\n", .inconsistent, "keys[0].plan", "no plan named \"gold\""),
            (plansYAML + "\nkeys:\n  - {key_env: MISSING_KEY, plan: free}\n", .missingEnvironment, "keys[0].key_env", "MISSING_KEY"),
            (plansYAML + "\nkeys:\n  - {key: abcdefgh123, plan: free}\n  - {key: abcdefgh123, plan: free}\n", .inconsistent, "keys[1]", "same API key"),
            (plansYAML + "\nkeys:\n  - {key: abcdefgh123, plan: free, overrides: {limits: {tokens: 5}}}\n", .inconsistent, "keys[0].overrides", "no metered feature tokens"),
            (plansYAML + "\nsidecar: {collectors: [http://x:1]}\n", .invalidValue, "sidecar.collectors[0]", "ZeroMQ endpoint"),
            (plansYAML + "\ncollector: {admin_token: short}\n", .invalidValue, "collector", "at least 16"),
            (plansYAML + "\ncollector: {dashboard_token: short}\n", .invalidValue, "collector", "dashboard_token must be at least 16"),
            (plansYAML + "\ncollector: {dashboard_token: a-token-of-16-chars, dashboard_token_env: X}\n", .inconsistent, "collector.dashboard_token_env", "not both"),
            ("plans:\n  p:\n    features:\n      api_call:\n        limit: 1\n        policy: {payment_required: {price: \"0.01\"}}\n",
             .missingKey, "x402", "x402 section is required"),
            ("plans:\n  p:\n    features:\n      api_call:\n        limit: 1\n        policy: {overage: {price: \"0.0000001\"}}\n",
             .invalidValue, "plans.p.features.api_call.policy.overage.price", "at most 6 decimals"),
            ("plans:\n  p:\n    features:\n      api_call:\n        limit: 1\n        policy: {overage: {price: \"1\", price_atomic: 5}}\n",
             .inconsistent, "plans.p.features.api_call.policy.overage.price_atomic", "not both"),
            ("plans: {}\n", .invalidValue, "plans", "at least one plan"),
            ("collector: {}\n", .missingKey, "plans", "required"),
            ("plans: [1, 2]\n", .invalidValue, "plans", "expected a mapping"),
            ("plans:\n  free:\n    features:\n      api_call: {limit: 1}\n      api_call: {limit: 2}\n", .syntax, "", "duplicated key(s): 'api_call'"),
        ]
        for (yaml, code, path, why) in cases {
            guard let error = failure(yaml) else { continue }
            #expect(error.code == code, "\(path): \(error)")
            #expect(error.path == path, "\(error)")
            #expect(error.message.contains(why), "\(error)")
        }
    }

    @Test func sidecarRoutesAndSpoolSettings() throws {
        let config = try parse(plansYAML + """

        sidecar:
          routes: [{prefix: /v1/chat, feature: tokens}, {prefix: /v1/chat/stream, feature: stream}]
          spool_fsync: always
          spool_max_bytes: 2_000_000
        """)
        #expect(config.sidecar.routes.map(\.prefix) == ["/v1/chat", "/v1/chat/stream"])
        #expect(config.sidecar.routes.map(\.feature) == ["tokens", "stream"])
        #expect(config.sidecar.spoolFsync == "always")
        #expect(config.sidecar.spoolMaxBytes == 2_000_000)
        #expect(failure(plansYAML + "\nsidecar: {routes: [{prefix: v1, feature: x}]}\n")?.path == "sidecar.routes[0].prefix")
        #expect(failure(plansYAML + "\nsidecar: {spool_fsync: sometimes}\n")?.path == "sidecar.spool_fsync")
    }

    @Test func sidecarThreadsDefaultToOnePerCoreAndAreBounded() throws {
        #expect(try parse(plansYAML).sidecar.threads == nil)
        #expect(try parse(plansYAML + "\nsidecar: {threads: 1}\n").sidecar.threads == 1)
        #expect(failure(plansYAML + "\nsidecar: {threads: 0}\n")?.path == "sidecar.threads")
        #expect(failure(plansYAML + "\nsidecar: {threads: 257}\n")?.path == "sidecar.threads")
        #expect(failure(plansYAML + "\nsidecar: {threads: two}\n")?.path == "sidecar.threads")
    }

    @Test func dashboardTokenIsOptionalAndReadFromTheEnvironment() throws {
        #expect(try parse(plansYAML).collector.dashboardToken == nil)
        let config = try parse(plansYAML + "\ncollector: {dashboard_token_env: DASH}\n", env: ["DASH": "0123456789abcdef-dash"])
        #expect(config.collector.dashboardToken == "0123456789abcdef-dash")
        #expect(failure(plansYAML + "\ncollector: {dashboard_token_env: DASH}\n")?.code == .missingEnvironment)
    }

    @Test func x402SectionIsValidated() {
        let base = """
        x402:
          network: NETWORK
          asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
          pay_to: PAYTO
          extra: {name: USDC, version: "2"}
          facilitator: {url: "http://127.0.0.1:7403"}

        """ + plansYAML
        let good = base.replacingOccurrences(of: "NETWORK", with: "base-sepolia")
            .replacingOccurrences(of: "PAYTO", with: "\"0x209693Bc6afc0C5328bA36FaF03C514EF312287C\"")
        #expect((try? parse(good))?.x402?.network.caip2 == "eip155:84532")
        let badNetwork = good.replacingOccurrences(of: "base-sepolia", with: "solana")
        #expect(failure(badNetwork)?.path == "x402.network")
        let badPayTo = base.replacingOccurrences(of: "NETWORK", with: "eip155:8453")
            .replacingOccurrences(of: "PAYTO", with: "\"0x1234\"")
        let error = failure(badPayTo)
        #expect(error?.path == "x402.pay_to")
        #expect(error?.message.contains("40 hex digits") == true)
        // payment-identifier idempotency: defaults, overrides, and bounds (a kept response must fit a frame).
        #expect((try? parse(good))?.x402?.idempotencyTTLSeconds == 3_600)
        #expect((try? parse(good))?.x402?.idempotencyMaxResponseBytes == 262_144)
        func idempotency(_ section: String) -> String {
            good.replacingOccurrences(of: "facilitator: {url: \"http://127.0.0.1:7403\"}",
                                      with: "facilitator: {url: \"http://127.0.0.1:7403\"}\n  idempotency: \(section)")
        }
        let tuned = try? parse(idempotency("{ttl_seconds: 600, max_response_bytes: 0}"))
        #expect(tuned?.x402?.idempotencyTTLSeconds == 600 && tuned?.x402?.idempotencyMaxResponseBytes == 0)
        #expect(failure(idempotency("{ttl_seconds: 5}"))?.path == "x402.idempotency.ttl_seconds")
        #expect(failure(idempotency("{max_response_bytes: -1}"))?.path == "x402.idempotency.max_response_bytes")
        #expect(failure(idempotency("{max_response_bytes: 99999999}"))?.path == "x402.idempotency.max_response_bytes")
        #expect(failure(idempotency("{ttl: 5}"))?.path.hasPrefix("x402.idempotency") == true)
        let small = idempotency("{max_response_bytes: 1048576}") + "\nzeromq: {max_frame_bytes: 1048576}\n"
        #expect(failure(small)?.path == "x402.idempotency.max_response_bytes")
    }

    @Test func errorsCarryFileAndLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tg-config-\(UInt64.random(in: 0...UInt64.max)).yaml").path
        try "plans:\n  free:\n    features:\n      api_call: {limit: -3}\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try TollgateConfiguration.load(path: path, environment: ConfigEnvironment([:]))
            Issue.record("negative limit accepted")
        } catch {
            #expect(error.location == "\(path):4:25")
            #expect(error.description.hasPrefix("\(path):4:25: plans.free.features.api_call.limit:"))
        }
        #expect(throws: ConfigError.self) { try TollgateConfiguration.load(path: path + ".missing", environment: ConfigEnvironment([:])) }
    }

    @Test func garbageDocumentsAreRefusedNotCrashed() {
        for text in ["", ":", "plans: [", "\u{0}\u{1}", "- a\n- b", String(repeating: "[", count: 10_000)] {
            #expect(throws: ConfigError.self) { try parse(text) }
        }
    }
}
