import Foundation
import TollgateCore
import TollgateRedis

/// Changes the admin API makes: keys' plans, limits and revocation, new keys, plans, listings.
///
/// Every change to a key is one compare-and-set script on the key's slot, guarded by the record's
/// `ver` field: read the record, compute the new fields, `INCR tg:version`, then write only if
/// `ver` is still what was read (else read again). So per key, versions grow in the order the
/// writes land, whatever the interleaving of concurrent admins. A change that changes nothing
/// writes nothing and keeps the version. Records written here are marked `src=admin`, and config
/// loads leave them alone from then on.
extension KeyRegistry {
    /// How many times a compare-and-set is retried when concurrent writers keep winning.
    static let casAttempts = 64

    /// Moves a key to plan `plan`; nil when the key is unknown. Throws `.invalidInput` for an unknown plan.
    ///
    /// The key's overrides are kept: those naming features the new plan lacks have no effect
    /// (`Plan.resolved(with:)` skips them) and apply again if the key moves back.
    public func setPlan(_ plan: String, keyID: String, on connection: RedisConnection) throws(StoreError) -> RegistryChange? {
        try UsageBatchRecord.checkName(plan, "plan", limits: self.limits, allowColon: true)
        let exists = try StoreError.wrapping("reading plans") {
            try connection.send("HEXISTS", RedisArgument(RedisKeys.plans), RedisArgument(plan)).expectInteger()
        }
        guard exists == 1 else { throw StoreError(.invalidInput, "no plan named \"\(plan)\"") }
        return try self.changeKey(keyID, "setting a key's plan", on: connection) { _ throws(StoreError) in ["plan": plan] }
    }

    /// Sets (a number) or clears (nil) per-feature limit overrides of a key; nil when the key is unknown.
    ///
    /// Throws `.invalidInput` when a feature is not a metered feature of the key's plan.
    public func setLimits(_ limits: [FeatureName: UInt64?], keyID: String, on connection: RedisConnection) throws(StoreError) -> RegistryChange? {
        guard !limits.isEmpty else { throw StoreError(.invalidInput, "no limits given") }
        return try self.changeKey(keyID, "setting a key's limits", on: connection) { stored throws(StoreError) in
            let plan = try self.plan(named: stored.key.plan, for: keyID, on: connection)
            var overrides = stored.key.overrides
            for feature in limits.keys.sorted() {
                guard case .metered = plan.features[feature] else {
                    throw StoreError(.invalidInput, "plan \(plan.name) has no metered feature \"\(feature)\"")
                }
                overrides.limits[feature] = limits[feature]!
            }
            return ["overrides": String(decoding: try Self.json(overrides), as: UTF8.self)]
        }
    }

    /// Sets or clears a key's revoked flag; nil when the key is unknown.
    public func setRevoked(_ revoked: Bool, keyID: String, on connection: RedisConnection) throws(StoreError) -> RegistryChange? {
        try self.changeKey(keyID, revoked ? "revoking a key" : "unrevoking a key", on: connection) { _ throws(StoreError) in
            ["revoked": revoked ? "1" : "0"]
        }
    }

    /// Adds a new key; nil when a key with that id exists already (nothing changes).
    ///
    /// Throws `.invalidInput` for an unknown plan, overrides of features the plan lacks, or a name
    /// another key has.
    public func createKey(_ key: KeyRecord, on connection: RedisConnection) throws(StoreError) -> RegistryChange? {
        try UsageBatchRecord.checkName(key.id, "key id", limits: self.limits, allowColon: false)
        guard AnonymousKeyID.parse(key.id) == nil else {
            throw StoreError(.invalidInput, "ids starting \"\(AnonymousKeyID.prefix)\" name anonymous callers; they follow their plan")
        }
        guard !key.name.isEmpty, key.name.utf8.count <= 128, !key.name.contains(where: \.isNewline) else {
            throw StoreError(.invalidInput, "a key name is 1 to 128 bytes on one line")
        }
        let plans = try self.plans(on: connection)
        guard let plan = plans[key.plan] else { throw StoreError(.invalidInput, "no plan named \"\(key.plan)\"") }
        if let unknown = key.overrides.unknownFeatures(in: plan).first {
            throw StoreError(.invalidInput, "plan \(plan.name) has no feature \"\(unknown)\" of the overridden kind")
        }
        let record = RedisArgument(RedisKeys.keyRecord(keyID: key.id))
        let exists = try StoreError.wrapping("creating a key") { try connection.send("EXISTS", record).expectInteger() }
        guard exists == 0 else { return nil }
        if try self.listKeys(on: connection).contains(where: { $0.key.name == key.name }) {
            throw StoreError(.invalidInput, "another key is named \"\(key.name)\"")
        }
        let overrides = String(decoding: try Self.json(key.overrides), as: UTF8.self)
        return try StoreError.wrapping("creating a key") {
            // Index first: an id listed without a record is skipped, a record nobody lists would be lost.
            try connection.send("SADD", RedisArgument(RedisKeys.keys), RedisArgument(key.id))
            let version = try Self.version(connection.send("INCR", RedisArgument(RedisKeys.version)))
            let created = try connection.evalScript(Self.createScript, keys: [record], args: [
                RedisArgument(version), "name", RedisArgument(key.name), "plan", RedisArgument(key.plan),
                "overrides", RedisArgument(overrides), "stripe", RedisArgument(key.stripeCustomer ?? ""), "revoked", "0",
            ]).expectInteger()
            return created == 1 ? RegistryChange(changed: true, version: version) : nil
        }
    }

    /// Creates or replaces plan `plan.name`; the version moves only when the stored plan changed.
    ///
    /// The plan is marked admin-managed first, so a config load never reverts it, even if the
    /// write below is interrupted.
    public func upsertPlan(_ plan: Plan, on connection: RedisConnection) throws(StoreError) -> RegistryChange {
        try UsageBatchRecord.checkName(plan.name, "plan", limits: self.limits, allowColon: true)
        guard !plan.features.isEmpty else { throw StoreError(.invalidInput, "a plan needs at least one feature") }
        for name in plan.features.keys {
            try UsageBatchRecord.checkName(name.rawValue, "feature", limits: self.limits, allowColon: false)
        }
        let json = try Self.json(plan)
        return try StoreError.wrapping("storing a plan") {
            try connection.send("SADD", RedisArgument(RedisKeys.adminPlans), RedisArgument(plan.name))
            let changed = try connection.evalScript(Self.upsertScript, keys: [RedisArgument(RedisKeys.plans)], args: [
                1, RedisArgument(plan.name), RedisArgument(json),
            ]).expectInteger()
            guard changed > 0 else { return RegistryChange(changed: false, version: try self.version(on: connection)) }
            return RegistryChange(changed: true, version: try Self.version(connection.send("INCR", RedisArgument(RedisKeys.version))))
        }
    }

    /// Every stored plan, by name.
    public func plans(on connection: RedisConnection) throws(StoreError) -> [String: Plan] {
        let reply = try StoreError.wrapping("reading plans") { try connection.send("HGETALL", RedisArgument(RedisKeys.plans)) }
        var plans: [String: Plan] = [:]
        let elements = reply.array ?? []
        for index in stride(from: 0, to: elements.count - 1, by: 2) {
            guard let name = elements[index].string, let bytes = elements[index + 1].bytes else { continue }
            plans[name] = try Self.decode(bytes, "plan \(name)")
        }
        return plans
    }

    /// Every key in `tg:keys` that has a record, sorted by name then id.
    public func listKeys(on connection: RedisConnection) throws(StoreError) -> [RegistryKey] {
        try StoreError.wrapping("listing keys") {
            let ids = (try connection.send("SMEMBERS", RedisArgument(RedisKeys.keys)).array ?? []).compactMap(\.string).sorted()
            guard !ids.isEmpty else { return [] }
            let replies = try connection.pipeline(ids.map { ["HGETALL", RedisArgument(RedisKeys.keyRecord(keyID: $0))] })
            var keys: [RegistryKey] = []
            for (id, reply) in zip(ids, replies) {
                let fields = Self.fields(try reply.expectNotError(command: "HGETALL"))
                guard !fields.isEmpty else { continue }
                keys.append(try Self.storedKey(keyID: id, fields: fields))
            }
            return keys.sorted { ($0.key.name, $0.key.id) < ($1.key.name, $1.key.id) }
        }
    }

    /// The stored key `keyID` without its plan resolved, or nil.
    public func storedKey(keyID: String, on connection: RedisConnection) throws(StoreError) -> RegistryKey? {
        guard (try? UsageBatchRecord.checkName(keyID, "key id", limits: self.limits, allowColon: false)) != nil else { return nil }
        let fields = try StoreError.wrapping("reading a key") {
            Self.fields(try connection.send("HGETALL", RedisArgument(RedisKeys.keyRecord(keyID: keyID))))
        }
        return fields.isEmpty ? nil : try Self.storedKey(keyID: keyID, fields: fields)
    }

    /// Reads key `keyID`, asks `change` for the fields to set, and writes those that differ with a
    /// compare-and-set on `ver`; nil when the key is unknown.
    func changeKey(
        _ keyID: String,
        _ doing: String,
        on connection: RedisConnection,
        _ change: (RegistryKey) throws(StoreError) -> [String: String]
    ) throws(StoreError) -> RegistryChange? {
        try UsageBatchRecord.checkName(keyID, "key id", limits: self.limits, allowColon: false)
        let record = RedisArgument(RedisKeys.keyRecord(keyID: keyID))
        for attempt in 0..<Self.casAttempts {
            if attempt > 0 {
                // Lost to another writer: back off a random while (up to 5 ms) so one of us gets through.
                usleep(UInt32.random(in: 0...min(5_000, 50 << min(attempt, 7))))
            }
            let fields = try StoreError.wrapping(doing) { Self.fields(try connection.send("HGETALL", record)) }
            guard !fields.isEmpty else { return nil }
            let wanted = try change(try Self.storedKey(keyID: keyID, fields: fields))
            let updates = wanted.filter { fields[$0.key] != $0.value }.sorted { $0.key < $1.key }
            guard !updates.isEmpty else { return RegistryChange(changed: false, version: try self.version(on: connection)) }
            let outcome: (Int64, UInt64) = try StoreError.wrapping(doing) {
                let version = try Self.version(connection.send("INCR", RedisArgument(RedisKeys.version)))
                var args: [RedisArgument] = [RedisArgument(fields["ver"] ?? ""), RedisArgument(version), RedisArgument(updates.count)]
                for (field, value) in updates { args += [RedisArgument(field), RedisArgument(value)] }
                return (try connection.evalScript(Self.compareAndSetScript, keys: [record], args: args).expectInteger(), version)
            }
            switch outcome.0 {
            case 1: return RegistryChange(changed: true, version: outcome.1)
            case -1: return nil
            default: continue  // another writer changed the record since it was read
            }
        }
        throw StoreError(.redis, "\(doing): the record of key \(keyID.prefix(12)) kept changing under concurrent writers; try again")
    }

    /// KEYS[1] a key record. ARGV[1] the `ver` read (empty if none), ARGV[2] the new version,
    /// ARGV[3] n, then n field/value pairs. Returns -1 (no record), 0 (`ver` moved), 1 (written).
    static let compareAndSetScript = RedisScript("""
    if redis.call('EXISTS', KEYS[1]) == 0 then
      return -1
    end
    if (redis.call('HGET', KEYS[1], 'ver') or '') ~= ARGV[1] then
      return 0
    end
    for i = 4, 3 + 2 * tonumber(ARGV[3]), 2 do
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    end
    redis.call('HSET', KEYS[1], 'ver', ARGV[2], 'src', 'admin')
    return 1
    """)

    /// KEYS[1] a key record. ARGV[1] the version, then field/value pairs. Returns 0 if the record exists, else 1.
    static let createScript = RedisScript("""
    if redis.call('EXISTS', KEYS[1]) == 1 then
      return 0
    end
    for i = 2, #ARGV, 2 do
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    end
    redis.call('HSET', KEYS[1], 'ver', ARGV[1], 'src', 'admin')
    return 1
    """)
}
