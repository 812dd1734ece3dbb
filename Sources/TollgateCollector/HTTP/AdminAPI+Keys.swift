import Foundation
import Hummingbird
import TollgateConfig
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateWire

extension AdminAPI {
    struct CreateKeyRequest: Decodable {
        var name: String
        var plan: String
        var key: String?
        var keySha256: String?
        var limits: [String: UInt64]?
        var stripeCustomer: String?

        enum CodingKeys: String, CodingKey {
            case name, plan, key, limits
            case keySha256 = "key_sha256"
            case stripeCustomer = "stripe_customer"
        }
    }

    enum CreateOutcome: Sendable {
        case created(RegistryChange)
        case exists
        case nameTaken
    }

    struct SetPlanRequest: Decodable {
        var plan: String
    }

    struct CreditRequest: Decodable {
        var feature: String?
        var units: UInt64
        var idempotencyKey: String?

        enum CodingKeys: String, CodingKey {
            case feature, units
            case idempotencyKey = "idempotency_key"
        }
    }

    func listKeys(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let keys = try await self.redis { connection, registry in try registry.listKeys(on: connection) }
        return AdminJSON.response(.ok, ["keys": keys.map(AdminRender.key)])
    }

    func showKey(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let keyID = try await self.resolveKey(context)
        guard let entry = try await self.redis({ connection, registry in try registry.lookup(keyID: keyID, on: connection) }),
              let stored = try await self.redis({ connection, registry in try registry.storedKey(keyID: keyID, on: connection) })
        else { throw Self.unknownKey }
        var object = AdminRender.key(stored)
        object["effective"] = AdminRender.effective(entry.effectivePlan)
        object["version"] = entry.version
        return AdminJSON.response(.ok, object)
    }

    func createKey(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try AdminJSON.decode(CreateKeyRequest.self, try await self.body(request),
                                        allowed: ["name", "plan", "key", "key_sha256", "limits", "stripe_customer"])
        var generated: String?
        let keyID: String
        switch (body.key, body.keySha256) {
        case (let key?, nil):
            guard key.utf8.count >= 8, key.utf8.count <= 256 else {
                throw AdminError(.badRequest, "invalid_request", "an API key is 8 to 256 bytes")
            }
            keyID = APIKeyHasher.keyID(for: key)
        case (nil, let hash?):
            guard APIKeyHasher.isKeyID(hash.lowercased()) else {
                throw AdminError(.badRequest, "invalid_request", "key_sha256 is 64 hex digits (SHA-256 of the key)")
            }
            keyID = hash.lowercased()
        case (nil, nil):
            let key = Self.generateAPIKey()
            generated = key
            keyID = APIKeyHasher.keyID(for: key)
        case (_?, _?):
            throw AdminError(.badRequest, "invalid_request", "give key or key_sha256, not both")
        }
        var overrides = KeyOverrides()
        for (feature, limit) in body.limits ?? [:] { overrides.limits[FeatureName(feature)] = limit }
        let record = KeyRecord(id: keyID, name: body.name, plan: body.plan, overrides: overrides, stripeCustomer: body.stripeCustomer)
        let outcome = try await self.redis { connection, registry -> CreateOutcome in
            if try registry.listKeys(on: connection).contains(where: { $0.key.name == record.name && $0.key.id != record.id }) {
                return .nameTaken
            }
            return try registry.createKey(record, on: connection).map(CreateOutcome.created) ?? .exists
        }
        let created: RegistryChange
        switch outcome {
        case .created(let change): created = change
        case .exists: throw AdminError(.conflict, "key_exists", "a key with this id exists already")
        case .nameTaken: throw AdminError(.conflict, "name_taken", "another key is named \"\(body.name)\"")
        }
        self.publish(.keyAdded, version: created.version, keyID: keyID) { $0.plan = record.plan }
        var object: [String: Any] = ["key": AdminRender.key(RegistryKey(key: record, revoked: false, managedByAdmin: true)), "version": created.version]
        if let generated { object["api_key"] = generated }
        return AdminJSON.response(.created, object)
    }

    func setPlan(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try AdminJSON.decode(SetPlanRequest.self, try await self.body(request), allowed: ["plan"])
        let keyID = try await self.resolveKey(context)
        let now = self.clock.now()
        let change = try await self.change(keyID, exhaustedAt: now) { connection, registry in try registry.setPlan(body.plan, keyID: keyID, on: connection) }
        return try self.changed(change, published: self.publishPlanChanged)
    }

    func setLimits(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try await self.body(request)
        let features = try JSONDecoder().decode(AdminJSON.FieldNames.self, from: Data(body)).names
        let limits = try AdminJSON.decode([String: AdminJSON.Limit].self, body, allowed: features)
        guard !limits.isEmpty else { throw AdminError(.badRequest, "invalid_request", "give at least one {feature: limit or null}") }
        let keyID = try await self.resolveKey(context)
        let changes = Dictionary(uniqueKeysWithValues: limits.map { (FeatureName($0.key), $0.value.value) })
        let now = self.clock.now()
        let change = try await self.change(keyID, exhaustedAt: now) { connection, registry in
            try registry.setLimits(changes, keyID: keyID, on: connection)
        }
        return try self.changed(change, published: self.publishPlanChanged)
    }

    /// PLAN_CHANGED for `key`, naming the features the change left with nothing: a sidecar then
    /// refuses the key's next call there without asking the collector first.
    func publishPlanChanged(_ change: KeyChange) {
        self.publish(.planChanged, version: change.change.version, keyID: change.key.key.id) { update in
            update.plan = change.key.key.plan
            update.exhausted = change.exhausted.map { spent in
                var feature = Tollgate_V1_ExhaustedFeature()
                feature.feature = spent.feature
                feature.periodID = spent.periodID
                return feature
            }
        }
    }

    func setRevoked(_ revoked: Bool, _ request: Request, _ context: BasicRequestContext) async throws -> Response {
        _ = try AdminJSON.decode(AdminJSON.FieldNames.self, try await self.body(request), allowed: [])
        let keyID = try await self.resolveKey(context)
        let change = try await self.change(keyID) { connection, registry in try registry.setRevoked(revoked, keyID: keyID, on: connection) }
        return try self.changed(change) { change in
            if revoked {
                self.publish(.keyRevoked, version: change.change.version, keyID: keyID)
            } else {
                // No kind says "unrevoked": PLAN_CHANGED tells sidecars to read the key again.
                self.publishPlanChanged(change)
            }
        }
    }

    func credit(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try AdminJSON.decode(CreditRequest.self, try await self.body(request), allowed: ["feature", "units", "idempotency_key"])
        let keyID = try await self.resolveKey(context)
        let feature = FeatureName(body.feature ?? FeatureName.apiCall.rawValue)
        let now = self.clock.now()
        let result = try await self.redis { connection, registry in
            try registry.credit(body.units, feature: feature, keyID: keyID, idempotencyKey: body.idempotencyKey, at: now, on: connection)
        }
        guard let result else { throw Self.unknownKey }
        if result.outcome == .conflict {
            throw AdminError(.conflict, "idempotency_key_reused",
                             "idempotency key was used for \(result.units) units of \(result.feature) in \(result.periodID)")
        }
        if result.outcome == .applied {
            self.publish(.credited, version: result.version, keyID: keyID) {
                $0.feature = feature.rawValue
                $0.periodID = result.periodID
                $0.creditedUnits = result.units
            }
        }
        return AdminJSON.response(.ok, [
            "key_id": keyID, "feature": result.feature.rawValue, "period": result.periodID, "units": result.units,
            "credit_total": result.totalCredit, "duplicate": result.outcome == .duplicate, "version": result.version,
        ])
    }

    /// Makes a change to key `keyID` and reads the record back, in one trip to the Redis thread:
    /// the update is published as soon as the change is written (a second trip, under load, was
    /// milliseconds more before any sidecar heard of it). Nil when the key is unknown. With
    /// `exhaustedAt` (a change of the key's limits or plan), the same trip also reads which of its
    /// features the change leaves exhausted then (see `exhaustedFeatures`).
    func change(
        _ keyID: String, exhaustedAt now: Timestamp? = nil,
        _ body: @escaping @Sendable (RedisConnection, KeyRegistry) throws -> RegistryChange?
    ) async throws -> KeyChange? {
        try await self.redis { connection, registry in
            guard let change = try body(connection, registry), let key = try registry.storedKey(keyID: keyID, on: connection) else { return nil }
            guard let now, change.changed else { return KeyChange(change: change, key: key, exhausted: []) }
            return KeyChange(change: change, key: key, exhausted: try Self.exhaustedFeatures(keyID: keyID, registry: registry, at: now, on: connection))
        }
    }

    /// The key's metered features that are spent at `now`: the period's used units already reach
    /// the limit plus credits, under a policy that refuses past it (block or payment_required) and
    /// strict enforcement. Only certain exhaustion counts (usage still on its way only adds to
    /// it); anything less is left to the sidecars' lease requests, as before.
    static func exhaustedFeatures(keyID: String, registry: KeyRegistry, at now: Timestamp, on connection: RedisConnection) throws -> [ExhaustedFeature] {
        guard let entry = try registry.lookup(keyID: keyID, on: connection), !entry.revoked else { return [] }
        let usage = UsageStore()
        var spent: [ExhaustedFeature] = []
        for (name, feature) in entry.effectivePlan.features.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            guard case .metered(let metered) = feature, metered.quotaMode == .strict else { continue }
            switch metered.policy {
            case .block, .paymentRequired: break
            case .overage: continue
            }
            let periodID = metered.period(containing: now).id
            let counters = try usage.usage(keyID: keyID, feature: name.rawValue, periodID: periodID, on: connection)
            let (included, overflow) = metered.limit.addingReportingOverflow(counters.credits)
            if !overflow, counters.units >= included {
                spent.append(ExhaustedFeature(feature: name.rawValue, periodID: periodID))
            }
        }
        return spent
    }

    /// The response to a key change: 404 for an unknown key, else the key as it is now;
    /// `published` runs only when something changed.
    func changed(_ change: KeyChange?, published: (KeyChange) -> Void) throws -> Response {
        guard let change else { throw Self.unknownKey }
        if change.change.changed { published(change) }
        return AdminJSON.response(.ok, ["key": AdminRender.key(change.key), "changed": change.change.changed, "version": change.change.version])
    }

    /// The key id the `{key}` path parameter names: an id as is, or a key's name (404 if none, 409 if several).
    func resolveKey(_ context: BasicRequestContext) async throws -> String {
        let parameter = try context.parameters.require("key")
        let raw = parameter.removingPercentEncoding ?? parameter
        if APIKeyHasher.isKeyID(raw) { return raw }
        let keys = try await self.redis { connection, registry in try registry.listKeys(on: connection) }
        let matches = keys.filter { $0.key.name == raw }
        guard let first = matches.first else { throw Self.unknownKey }
        guard matches.count == 1 else {
            throw AdminError(.conflict, "ambiguous_name", "\(matches.count) keys are named \"\(raw)\"; use the key id")
        }
        return first.key.id
    }

    static let unknownKey = AdminError(.notFound, "unknown_key", "no key with that id or name")

    /// A new API key: `tg_` and 40 random hex digits (160 bits from the system's generator).
    static func generateAPIKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef".utf8)
        return "tg_" + String(decoding: (0..<40).map { _ in hex[Int(generator.next() % 16)] }, as: UTF8.self)
    }
}

/// A change to one key, read back, with the features it left exhausted.
struct KeyChange: Sendable {
    var change: RegistryChange
    var key: RegistryKey
    var exhausted: [ExhaustedFeature]
}

/// A metered feature with nothing left in its period.
struct ExhaustedFeature: Sendable, Hashable {
    var feature: String
    var periodID: String
}
