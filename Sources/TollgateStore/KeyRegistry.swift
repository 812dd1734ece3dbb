import Foundation
import TollgateCore
import TollgateRedis

/// The registry of plans and API keys in Redis, with an update version bumped on every change.
///
/// Threading: a `Sendable` value without a connection; each call blocks on the one it is given
/// (see `UsageStore`). Plans live in the hash `tg:plans` (name → plan JSON), each key in
/// `tg:{<key>}:key`, and `tg:version` counts changes. JSON is written with sorted keys, so the
/// same plan always encodes to the same bytes and an unchanged upsert changes nothing.
///
/// ```swift
/// let registry = KeyRegistry()
/// try registry.load(plans: config.plans, keys: keys, on: connection)   // at collector start
/// if let entry = try registry.lookup(keyID: id, on: connection) { print(entry.effectivePlan) }
/// ```
public struct KeyRegistry: Sendable {
    let metrics = StoreMetrics()
    private let limits = UsageBatchLimits()

    /// A registry.
    public init() {}

    /// Upserts every plan and key (idempotent); bumps the version if anything changed and returns the version.
    ///
    /// A key's `revoked` flag is only initialised, never reset: a restart does not un-revoke a key.
    /// Keys and plans missing from the arguments are left as they are.
    @discardableResult
    public func load(plans: [String: Plan], keys: [KeyRecord], on connection: RedisConnection) throws(StoreError) -> UInt64 {
        for key in keys {
            try UsageBatchRecord.checkName(key.id, "key id", limits: self.limits, allowColon: false)
            guard plans[key.plan] != nil else {
                throw StoreError(.invalidInput, "key \(key.name) names plan \"\(key.plan)\", which is not among the plans loaded")
            }
        }
        var calls: [RedisScriptCall] = []
        if !plans.isEmpty {
            var args: [RedisArgument] = [RedisArgument(plans.count)]
            for name in plans.keys.sorted() {
                args += [RedisArgument(name), RedisArgument(try Self.json(plans[name]!))]
            }
            calls.append(RedisScriptCall(keys: [RedisArgument(RedisKeys.plans)], args: args))
        }
        for key in keys {
            var fields: [(String, String)] = [("name", key.name), ("plan", key.plan), ("overrides", String(decoding: try Self.json(key.overrides), as: UTF8.self))]
            fields.append(("stripe", key.stripeCustomer ?? ""))
            var args: [RedisArgument] = [RedisArgument(fields.count)]
            for (field, value) in fields { args += [RedisArgument(field), RedisArgument(value)] }
            args += ["revoked", "0"]  // set only if absent
            calls.append(RedisScriptCall(keys: [RedisArgument(RedisKeys.keyRecord(keyID: key.id))], args: args))
        }
        return try self.metrics.timed(self.metrics.registryLoadTimer) { () throws(StoreError) in
            try StoreError.wrapping("loading the registry") {
                let replies = try connection.pipelineScript(Self.upsertScript, calls: calls)
                var changed = 0
                for reply in replies { changed += Int(try reply.expectInteger()) }
                return try Self.version(changed > 0 ? connection.send("INCR", RedisArgument(RedisKeys.version)) : connection.send("GET", RedisArgument(RedisKeys.version)))
            }
        }
    }

    /// Sets or clears a key's revoked flag; bumps the version if it changed. False if the key is unknown.
    @discardableResult
    public func setRevoked(_ revoked: Bool, keyID: String, on connection: RedisConnection) throws(StoreError) -> Bool {
        try UsageBatchRecord.checkName(keyID, "key id", limits: self.limits, allowColon: false)
        return try StoreError.wrapping("revoking a key") {
            let record = RedisArgument(RedisKeys.keyRecord(keyID: keyID))
            guard try connection.send("EXISTS", record).expectInteger() == 1 else { return false }
            let changed = try connection.evalScript(Self.upsertScript, keys: [record], args: [1, "revoked", revoked ? "1" : "0"])
            if try changed.expectInteger() > 0 { try connection.send("INCR", RedisArgument(RedisKeys.version)) }
            return true
        }
    }

    /// The registry update version (0 before anything was loaded).
    public func version(on connection: RedisConnection) throws(StoreError) -> UInt64 {
        try StoreError.wrapping("reading the registry version") {
            try Self.version(connection.send("GET", RedisArgument(RedisKeys.version)))
        }
    }

    /// The key's entry with its effective plan, or nil when the registry does not know the key.
    ///
    /// Throws `.corruptRecord` if the key names a plan that is not stored or JSON does not decode.
    public func lookup(keyID: String, on connection: RedisConnection) throws(StoreError) -> RegistryEntry? {
        do {
            try UsageBatchRecord.checkName(keyID, "key id", limits: self.limits, allowColon: false)
        } catch {
            return nil  // an id that cannot be stored is an id the registry does not know
        }
        let replies = try self.metrics.timed(self.metrics.registryLookupTimer) { () throws(StoreError) in
            try StoreError.wrapping("looking up a key") {
                try connection.pipeline([
                    ["HGETALL", RedisArgument(RedisKeys.keyRecord(keyID: keyID))],
                    ["GET", RedisArgument(RedisKeys.version)],
                ])
            }
        }
        var fields: [String: String] = [:]
        let elements = replies[0].array ?? []
        for index in stride(from: 0, to: elements.count - 1, by: 2) {
            if let field = elements[index].string, let value = elements[index + 1].string { fields[field] = value }
        }
        guard !fields.isEmpty else { return nil }
        guard let name = fields["name"], let planName = fields["plan"], let overridesText = fields["overrides"] else {
            throw StoreError(.corruptRecord, "registry record of key \(keyID.prefix(12)) lacks name, plan or overrides")
        }
        let planReply = try StoreError.wrapping("reading a plan") {
            try connection.send("HGET", RedisArgument(RedisKeys.plans), RedisArgument(planName))
        }
        guard let planBytes = planReply.bytes else {
            throw StoreError(.corruptRecord, "key \(keyID.prefix(12)) names plan \"\(planName)\", which is not stored")
        }
        let plan: Plan = try Self.decode(planBytes, "plan \(planName)")
        let overrides: KeyOverrides = try Self.decode(Array(overridesText.utf8), "overrides of key \(keyID.prefix(12))")
        let stripe = fields["stripe"].flatMap { $0.isEmpty ? nil : $0 }
        let effective = plan.resolved(with: overrides)
        return RegistryEntry(
            key: KeyRecord(id: keyID, name: name, plan: planName, overrides: overrides, stripeCustomer: stripe),
            revoked: fields["revoked"] == "1",
            effectivePlan: effective,
            effectivePlanJSON: try Self.json(effective),
            version: try Self.version(replies[1])
        )
    }

    /// Sets hash fields whose value differs; returns how many changed.
    ///
    /// KEYS[1] the hash. ARGV[1] n, then n field/value pairs to set, then pairs to set only if absent.
    static let upsertScript = RedisScript("""
    local n = tonumber(ARGV[1])
    local changed = 0
    for i = 2, 2 * n, 2 do
      if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
        changed = changed + 1
      end
    end
    for i = 2 * n + 2, #ARGV, 2 do
      changed = changed + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
    end
    return changed
    """)

    static func json(_ value: some Encodable) throws(StoreError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return Array(try encoder.encode(value))
        } catch {
            throw StoreError(.invalidInput, "cannot encode \(type(of: value)) as JSON: \(error)")
        }
    }

    static func decode<T: Decodable>(_ bytes: [UInt8], _ what: String) throws(StoreError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch {
            throw StoreError(.corruptRecord, "\(what) is not valid JSON: \(error)")
        }
    }

    static func version(_ reply: RedisReply) throws(StoreError) -> UInt64 {
        if reply.isNull { return 0 }
        guard let value = reply.int, value >= 0 else {
            throw StoreError(.corruptRecord, "\(RedisKeys.version) holds \(reply)")
        }
        return UInt64(value)
    }
}
