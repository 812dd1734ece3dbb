import Foundation
import Testing
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

@Suite("KeyRegistry against a real redis-server")
struct KeyRegistryTests {
    static let free = Plan(name: "free", features: [
        .apiCall: .metered(MeteredFeature(limit: 1_000, reset: .day)),
        "export": .boolean(enabled: false),
    ])
    static let pro = Plan(name: "pro", features: [.apiCall: .metered(MeteredFeature(limit: 100_000, reset: .billingCycle))],
                          rateTier: RateTier(capacity: 20, refill: RefillRate(tokens: 10)))
    static let anchor = Timestamp(seconds: 1_769_817_600)
    static let keys = [
        KeyRecord(id: keyID(1), name: "demo-free", plan: "free", overrides: KeyOverrides(limits: [.apiCall: 5_000], enabled: ["export": true])),
        KeyRecord(id: keyID(2), name: "demo-pro", plan: "pro", overrides: KeyOverrides(billingAnchor: anchor), stripeCustomer: "cus_123"),
    ]

    @Test("load then lookup returns the key with its effective plan; unknown keys are nil")
    func roundTrip() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let registry = KeyRegistry()
                let version = try registry.load(plans: ["free": Self.free, "pro": Self.pro], keys: Self.keys, on: connection)
                #expect(version == 1)

                let free = try #require(try registry.lookup(keyID: keyID(1), on: connection))
                #expect(free.key == Self.keys[0])
                #expect(free.revoked == false)
                #expect(free.version == 1)
                #expect(free.effectivePlan == Self.free.resolved(with: Self.keys[0].overrides))
                #expect(try JSONDecoder().decode(EffectivePlan.self, from: Data(free.effectivePlanJSON)) == free.effectivePlan)
                guard case .metered(let calls)? = free.effectivePlan.feature(.apiCall) else {
                    Issue.record("api_call is not metered")
                    return
                }
                #expect(calls.limit == 5_000)
                #expect(free.effectivePlan.feature("export") == .boolean(enabled: true))

                let pro = try #require(try registry.lookup(keyID: keyID(2), on: connection))
                #expect(pro.key.stripeCustomer == "cus_123")
                #expect(pro.effectivePlan.rateTier == Self.pro.rateTier)
                guard case .metered(let proCalls)? = pro.effectivePlan.feature(.apiCall) else {
                    Issue.record("api_call is not metered")
                    return
                }
                #expect(proCalls.interval == .billingCycle(anchor: Self.anchor))

                #expect(try registry.lookup(keyID: keyID(3), on: connection) == nil)
                #expect(try registry.lookup(keyID: "not{a}key", on: connection) == nil)
            }
        }
    }

    @Test("a lookup is one trip when its plan is held for the version it read; a changed plan is seen at once")
    func planHeldForItsVersion() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let registry = KeyRegistry()
                try registry.load(plans: ["free": Self.free, "pro": Self.pro], keys: Self.keys, on: connection)
                let planReads = { () throws -> Int in
                    let info = try connection.send("INFO", "commandstats").string ?? ""
                    guard let line = info.split(separator: "\r\n").first(where: { $0.hasPrefix("cmdstat_hget:") }),
                          let calls = line.split(separator: "=").dropFirst().first?.split(separator: ",").first else { return 0 }
                    return Int(calls) ?? -1
                }
                let before = try planReads()
                _ = try registry.lookup(keyID: keyID(2), on: connection)
                #expect(try planReads() == before + 1)
                for _ in 0..<5 { _ = try registry.lookup(keyID: keyID(2), on: connection) }
                #expect(try planReads() == before + 1)  // held: no more reads of the plan

                // Another collector changes the plan: the version moves, so this registry reads it again.
                var pro = Self.pro
                pro.features[.apiCall] = .metered(MeteredFeature(limit: 7, reset: .billingCycle))
                #expect(try KeyRegistry().upsertPlan(pro, on: connection).changed)
                let afterChange = try planReads()
                let entry = try #require(try registry.lookup(keyID: keyID(2), on: connection))
                guard case .metered(let calls)? = entry.effectivePlan.feature(.apiCall) else {
                    Issue.record("api_call is not metered")
                    return
                }
                #expect(calls.limit == 7)
                #expect(try planReads() == afterChange + 1)
            }
        }
    }

    @Test("an anonymous caller's id is answered from the plan it names; no record can take that id")
    func anonymousCallers() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let registry = KeyRegistry()
                _ = try registry.load(plans: ["free": Self.free, "pro": Self.pro], keys: Self.keys, on: connection)
                let id = AnonymousKeyID.make(plan: "free", clientAddress: "2001:db8::7")
                let entry = try #require(try registry.lookup(keyID: id, on: connection))
                #expect(entry.key.id == id && entry.key.plan == "free" && entry.key.name == "anonymous 2001-db8--")
                #expect(entry.revoked == false && entry.version == 1)
                #expect(entry.effectivePlan == Self.free.resolved(with: KeyOverrides()))
                #expect(try JSONDecoder().decode(EffectivePlan.self, from: Data(entry.effectivePlanJSON)) == entry.effectivePlan)
                #expect(try registry.lookup(keyID: AnonymousKeyID.make(plan: "gold", clientAddress: "1.2.3.4"), on: connection) == nil)

                #expect(throws: StoreError.self) {
                    _ = try registry.createKey(KeyRecord(id: id, name: "squatter", plan: "pro"), on: connection)
                }
                #expect(throws: StoreError.self) {
                    _ = try registry.load(plans: ["pro": Self.pro], keys: [KeyRecord(id: id, name: "squatter", plan: "pro")], on: connection)
                }
                #expect(try registry.lookup(keyID: id, on: connection)?.key.plan == "free")
            }
        }
    }

    @Test("loading is an idempotent upsert: the version moves only when something changed")
    func idempotentLoad() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let registry = KeyRegistry()
                #expect(try registry.version(on: connection) == 0)
                #expect(try registry.load(plans: ["free": Self.free, "pro": Self.pro], keys: Self.keys, on: connection) == 1)
                #expect(try registry.load(plans: ["free": Self.free, "pro": Self.pro], keys: Self.keys, on: connection) == 1)

                var keys = Self.keys
                keys[0].plan = "pro"
                #expect(try registry.load(plans: ["free": Self.free, "pro": Self.pro], keys: keys, on: connection) == 2)
                #expect(try registry.lookup(keyID: keyID(1), on: connection)?.key.plan == "pro")

                // Revoking survives a reload of the same configuration.
                #expect(try registry.setRevoked(true, keyID: keyID(1), on: connection) == RegistryChange(changed: true, version: 3))
                #expect(try registry.version(on: connection) == 3)
                #expect(try registry.load(plans: ["free": Self.free, "pro": Self.pro], keys: keys, on: connection) == 3)
                #expect(try registry.lookup(keyID: keyID(1), on: connection)?.revoked == true)
                #expect(try registry.setRevoked(true, keyID: keyID(9), on: connection) == nil)
            }
        }
    }

    @Test("a key naming a plan that is not loaded is refused")
    func unknownPlan() throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let error = #expect(throws: StoreError.self) {
                    try KeyRegistry().load(plans: ["free": Self.free], keys: Self.keys, on: connection)
                }
                #expect(error?.code == .invalidInput)
            }
        }
    }
}
