import Foundation
import Testing
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport

@Suite("KeyRegistry admin changes against a real redis-server")
struct KeyRegistryAdminTests {
    static let free = Plan(name: "free", features: [
        .apiCall: .metered(MeteredFeature(limit: 1_000, reset: .day)),
        "tokens": .metered(MeteredFeature(limit: 50_000, unit: "token", reset: .month)),
        "export": .boolean(enabled: false),
    ])
    static let pro = Plan(name: "pro", features: [.apiCall: .metered(MeteredFeature(limit: 100_000, reset: .month))])
    static let plans = ["free": free, "pro": pro]
    static let keys = [KeyRecord(id: keyID(1), name: "demo-free", plan: "free")]

    /// Runs `body` with a registry loaded with `plans` and `keys` (version 1).
    func withRegistry(_ body: (KeyRegistry, RedisConnection) throws -> Void) throws {
        try withRedisServer { server throws in
            try server.withConnection { connection throws in
                let registry = KeyRegistry()
                #expect(try registry.load(plans: Self.plans, keys: Self.keys, on: connection) == 1)
                try body(registry, connection)
            }
        }
    }

    @Test("setPlan moves the key, bumps the version once, and refuses unknown plans and keys")
    func setPlan() throws {
        try withRegistry { registry, connection throws in
            #expect(try registry.setPlan("pro", keyID: keyID(1), on: connection) == RegistryChange(changed: true, version: 2))
            #expect(try registry.setPlan("pro", keyID: keyID(1), on: connection) == RegistryChange(changed: false, version: 2))
            let entry = try #require(try registry.lookup(keyID: keyID(1), on: connection))
            #expect(entry.key.plan == "pro" && entry.version == 2)
            #expect(entry.effectivePlan == Self.pro.resolved())
            #expect(try registry.setPlan("pro", keyID: keyID(2), on: connection) == nil)
            let error = #expect(throws: StoreError.self) { try registry.setPlan("gold", keyID: keyID(1), on: connection) }
            #expect(error?.code == .invalidInput)
            #expect(try registry.version(on: connection) == 2)
            let fields = try connection.send("HMGET", RedisArgument(RedisKeys.keyRecord(keyID: keyID(1))), "src", "ver")
            #expect(fields.array?.compactMap(\.string) == ["admin", "2"])
        }
    }

    @Test("setLimits sets and clears overrides of metered features only")
    func setLimits() throws {
        try withRegistry { registry, connection throws in
            #expect(try registry.setLimits([.apiCall: 5_000, "tokens": 10], keyID: keyID(1), on: connection)?.version == 2)
            var entry = try #require(try registry.lookup(keyID: keyID(1), on: connection))
            #expect(entry.key.overrides.limits == [.apiCall: 5_000, "tokens": 10])
            guard case .metered(let calls)? = entry.effectivePlan.feature(.apiCall) else {
                Issue.record("api_call is not metered")
                return
            }
            #expect(calls.limit == 5_000)
            #expect(try registry.setLimits([.apiCall: nil], keyID: keyID(1), on: connection) == RegistryChange(changed: true, version: 3))
            #expect(try registry.setLimits([.apiCall: nil], keyID: keyID(1), on: connection) == RegistryChange(changed: false, version: 3))
            entry = try #require(try registry.lookup(keyID: keyID(1), on: connection))
            #expect(entry.key.overrides.limits == ["tokens": 10])
            for bad: FeatureName in ["export", "nope"] {
                let error = #expect(throws: StoreError.self) { try registry.setLimits([bad: 1], keyID: keyID(1), on: connection) }
                #expect(error?.code == .invalidInput)
            }
            #expect(try registry.version(on: connection) == 3)
        }
    }

    @Test("revoking returns the version; a config reload leaves an admin-changed key alone")
    func revokeAndReload() throws {
        try withRegistry { registry, connection throws in
            #expect(try registry.setRevoked(true, keyID: keyID(1), on: connection) == RegistryChange(changed: true, version: 2))
            #expect(try registry.setRevoked(true, keyID: keyID(1), on: connection) == RegistryChange(changed: false, version: 2))
            #expect(try registry.setPlan("pro", keyID: keyID(1), on: connection)?.version == 3)
            // The config still says free: the admin's change wins, and nothing moves.
            #expect(try registry.load(plans: Self.plans, keys: Self.keys, on: connection) == 3)
            let entry = try #require(try registry.lookup(keyID: keyID(1), on: connection))
            #expect(entry.key.plan == "pro" && entry.revoked)
            #expect(try registry.setRevoked(false, keyID: keyID(1), on: connection) == RegistryChange(changed: true, version: 4))
            #expect(try registry.lookup(keyID: keyID(1), on: connection)?.revoked == false)
        }
    }

    @Test("createKey adds the key to tg:keys; an existing id gives nil, a taken name or unknown plan is refused")
    func createAndList() throws {
        try withRegistry { registry, connection throws in
            let record = KeyRecord(id: keyID(2), name: "acme", plan: "pro", overrides: KeyOverrides(limits: [.apiCall: 7]), stripeCustomer: "cus_1")
            #expect(try registry.createKey(record, on: connection) == RegistryChange(changed: true, version: 2))
            #expect(try registry.createKey(record, on: connection) == nil)
            var taken = record
            taken.id = keyID(3)
            taken.name = "demo-free"
            #expect((#expect(throws: StoreError.self) { try registry.createKey(taken, on: connection) })?.code == .invalidInput)
            taken.name = "other"
            taken.plan = "gold"
            #expect((#expect(throws: StoreError.self) { try registry.createKey(taken, on: connection) })?.code == .invalidInput)
            taken.plan = "pro"
            taken.overrides = KeyOverrides(limits: ["tokens": 1])
            #expect((#expect(throws: StoreError.self) { try registry.createKey(taken, on: connection) })?.code == .invalidInput)

            let members = try connection.send("SMEMBERS", RedisArgument(RedisKeys.keys)).array?.compactMap(\.string).sorted()
            #expect(members == [keyID(1), keyID(2)])
            let listed = try registry.listKeys(on: connection)
            #expect(listed.map(\.key.name) == ["acme", "demo-free"])
            #expect(listed[0] == RegistryKey(key: record, revoked: false, managedByAdmin: true))
            #expect(listed[1].managedByAdmin == false)
            #expect(try registry.lookup(keyID: keyID(2), on: connection)?.version == 2)
        }
    }

    @Test("upsertPlan changes a plan for every key on it, and a config reload does not revert it")
    func upsertPlan() throws {
        try withRegistry { registry, connection throws in
            var free = Self.free
            free.features[.apiCall] = .metered(MeteredFeature(limit: 10, reset: .day))
            #expect(try registry.upsertPlan(free, on: connection) == RegistryChange(changed: true, version: 2))
            #expect(try registry.upsertPlan(free, on: connection) == RegistryChange(changed: false, version: 2))
            #expect(try registry.load(plans: Self.plans, keys: Self.keys, on: connection) == 2)
            #expect(try registry.plans(on: connection)["free"] == free)
            let entry = try #require(try registry.lookup(keyID: keyID(1), on: connection))
            #expect(entry.effectivePlan == free.resolved())
            let gold = Plan(name: "gold", features: [.apiCall: .metered(MeteredFeature(limit: 1))])
            #expect(try registry.upsertPlan(gold, on: connection).version == 3)
            #expect(try registry.plans(on: connection).keys.sorted() == ["free", "gold", "pro"])
        }
    }

    @Test("concurrent admins on one key lose no change, and the record's version is the last one handed out")
    func concurrentChanges() throws {
        try withRedisServer { server throws in
            _ = try server.withConnection { connection throws in
                try KeyRegistry().load(plans: Self.plans, keys: Self.keys, on: connection)
            }
            let rounds = 25
            let results = ResultsBox()
            let finished = DispatchSemaphore(value: 0)
            let threads = [FeatureName.apiCall, "tokens"].map { feature in
                Thread {
                    defer { finished.signal() }
                    do {
                        try server.withConnection { connection throws in
                            for limit in 1...rounds {
                                let change = try KeyRegistry().setLimits([feature: UInt64(limit)], keyID: keyID(1), on: connection)
                                results.append(change?.version ?? 0)
                            }
                        }
                    } catch {
                        results.append(0)
                    }
                }
            }
            threads.forEach { $0.start() }
            for _ in threads { _ = finished.wait(timeout: .now() + 30) }
            let versions = results.values
            #expect(versions.count == 2 * rounds && !versions.contains(0))
            #expect(Set(versions).count == versions.count)
            try server.withConnection { connection throws in
                let entry = try #require(try KeyRegistry().lookup(keyID: keyID(1), on: connection))
                #expect(entry.key.overrides.limits == [.apiCall: UInt64(rounds), "tokens": UInt64(rounds)])
                let ver = try connection.send("HGET", RedisArgument(RedisKeys.keyRecord(keyID: keyID(1))), "ver").int
                #expect(ver.map(UInt64.init) == versions.max())
            }
        }
    }
}

/// Versions collected from several threads.
// @unchecked Sendable: `storage` is only touched under `lock`.
final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [UInt64] = []
    func append(_ value: UInt64) { lock.withLock { storage.append(value) } }
    var count: Int { lock.withLock { storage.count } }
    var values: [UInt64] { lock.withLock { storage } }
}
