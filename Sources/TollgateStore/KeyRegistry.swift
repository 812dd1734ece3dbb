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
/// let change = try registry.setPlan("pro", keyID: id, on: connection)  // admin API; publish change.version
/// ```
///
/// Admin changes to a key (`KeyRegistry+Admin.swift`) are compare-and-set on the record's `ver`
/// field, so per key the registry versions grow in the order the changes were written, and an
/// update a sidecar drops as stale really is older than the one it kept.
public struct KeyRegistry: Sendable {
    let metrics = StoreMetrics()
    let limits = UsageBatchLimits()
    /// Plans as of a registry version, so a lookup is one trip to Redis (see `PlanVersionCache`).
    let plansByVersion = PlanVersionCache()

    /// A registry.
    public init() {}

    /// Upserts every plan and key (idempotent); bumps the version if anything changed and returns the version.
    ///
    /// A key's `revoked` flag is only initialised, never reset: a restart does not un-revoke a key.
    /// Keys and plans missing from the arguments are left as they are, and so are keys and plans the
    /// admin API has changed since (`src` of a key record, `tg:plans:admin`): the running registry
    /// owns them from then on. Every key id is added to `tg:keys`.
    @discardableResult
    public func load(plans: [String: Plan], keys: [KeyRecord], on connection: RedisConnection) throws(StoreError) -> UInt64 {
        for key in keys {
            try UsageBatchRecord.checkName(key.id, "key id", limits: self.limits, allowColon: false)
            guard AnonymousKeyID.parse(key.id) == nil else {
                throw StoreError(.invalidInput, "key \(key.name): ids starting \"\(AnonymousKeyID.prefix)\" name anonymous callers")
            }
            guard plans[key.plan] != nil else {
                throw StoreError(.invalidInput, "key \(key.name) names plan \"\(key.plan)\", which is not among the plans loaded")
            }
        }
        let adminPlans = try StoreError.wrapping("reading admin-managed plans") {
            Set(try connection.send("SMEMBERS", RedisArgument(RedisKeys.adminPlans)).array?.compactMap(\.string) ?? [])
        }
        let configPlans = plans.keys.filter { !adminPlans.contains($0) }.sorted()
        var calls: [RedisScriptCall] = []
        if !configPlans.isEmpty {
            var args: [RedisArgument] = [RedisArgument(configPlans.count)]
            for name in configPlans {
                args += [RedisArgument(name), RedisArgument(try Self.json(plans[name]!))]
            }
            calls.append(RedisScriptCall(keys: [RedisArgument(RedisKeys.plans)], args: args))
        }
        var keyCalls: [RedisScriptCall] = []
        for key in keys {
            var fields: [(String, String)] = [("name", key.name), ("plan", key.plan), ("overrides", String(decoding: try Self.json(key.overrides), as: UTF8.self))]
            fields.append(("stripe", key.stripeCustomer ?? ""))
            var args: [RedisArgument] = [RedisArgument(fields.count)]
            for (field, value) in fields { args += [RedisArgument(field), RedisArgument(value)] }
            args += ["revoked", "0"]  // set only if absent
            keyCalls.append(RedisScriptCall(keys: [RedisArgument(RedisKeys.keyRecord(keyID: key.id))], args: args))
        }
        return try self.metrics.timed(self.metrics.registryLoadTimer) { () throws(StoreError) in
            try StoreError.wrapping("loading the registry") {
                var replies = try connection.pipelineScript(Self.upsertScript, calls: calls)
                replies += try connection.pipelineScript(Self.configKeyScript, calls: keyCalls)
                var changed = 0
                for reply in replies { changed += Int(try reply.expectInteger()) }
                if !keys.isEmpty {
                    // The index is not part of what sidecars see, so adding to it is no change.
                    try connection.send([RedisArgument("SADD"), RedisArgument(RedisKeys.keys)] + keys.map { RedisArgument($0.id) })
                }
                return try Self.version(changed > 0 ? connection.send("INCR", RedisArgument(RedisKeys.version)) : connection.send("GET", RedisArgument(RedisKeys.version)))
            }
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
        try self.finishLookup(self.startLookup(keyID: keyID, on: connection), on: connection)
    }

    /// A lookup whose commands are on their way to Redis (`startLookup`): the caller does other
    /// work meanwhile, then reads it with `finishLookup`, before anything else on that connection.
    public struct PendingLookup: Sendable {
        let keyID: String
        /// False for an id the registry cannot hold: nothing was sent.
        let sent: Bool
        let started: ContinuousClock.Instant
    }

    /// Sends the key's lookup (its record and the registry version, one write) without waiting.
    public func startLookup(keyID: String, on connection: RedisConnection) throws(StoreError) -> PendingLookup {
        do {
            try UsageBatchRecord.checkName(keyID, "key id", limits: self.limits, allowColon: false)
        } catch {
            return PendingLookup(keyID: keyID, sent: false, started: .now)  // an id that cannot be stored is unknown
        }
        let started = ContinuousClock.now
        try StoreError.wrapping("looking up a key") {
            try connection.append(["HGETALL", RedisArgument(RedisKeys.keyRecord(keyID: keyID))])
            try connection.append(["GET", RedisArgument(RedisKeys.version)])
            try connection.flush()
        }
        return PendingLookup(keyID: keyID, sent: true, started: started)
    }

    /// Reads a lookup `startLookup` sent: the key's entry, or nil when the registry does not know it.
    public func finishLookup(_ pending: PendingLookup, on connection: RedisConnection) throws(StoreError) -> RegistryEntry? {
        guard pending.sent else { return nil }
        let keyID = pending.keyID
        let replies = try StoreError.wrapping("looking up a key") {
            [try connection.readReply(), try connection.readReply()]
        }
        self.metrics.registryLookupTimer.recordNanoseconds((ContinuousClock.now - pending.started).nanosecondsClamped)
        let fields = Self.fields(replies[0])
        if fields.isEmpty, let anonymous = AnonymousKeyID.parse(keyID) {
            return try self.anonymousEntry(keyID: keyID, plan: anonymous.plan, client: anonymous.client, version: replies[1], on: connection)
        }
        guard !fields.isEmpty else { return nil }
        let stored = try Self.storedKey(keyID: keyID, fields: fields)
        let version = try Self.version(replies[1])
        let planBytes = try self.planBytes(named: stored.key.plan, for: keyID, asOf: version, on: connection)
        let (effective, json) = try Self.resolved(planBytes, name: stored.key.plan, overrides: fields["overrides"] ?? "", stored.key.overrides)
        return RegistryEntry(
            key: stored.key,
            revoked: stored.revoked,
            effectivePlan: effective,
            effectivePlanJSON: json,
            version: version
        )
    }

    /// Effective plans by the stored plan's JSON and the key's overrides' JSON: a plan decoded,
    /// resolved and encoded once, not on every lookup (every lease request and key lookup makes
    /// one; the JSON work was most of its CPU). Pure in its key: a changed plan or override is a
    /// different key.
    private static let effectivePlans = BoundedMemo<EffectivePlanSource, (EffectivePlan, [UInt8])>(capacity: 4_096)

    /// Keys' overrides by their stored JSON (most keys share `{}` or a handful of shapes).
    private static let overrides = BoundedMemo<String, KeyOverrides>(capacity: 4_096)

    struct EffectivePlanSource: Hashable, Sendable {
        var plan: [UInt8]
        var overrides: String
    }

    static func resolved(_ planBytes: [UInt8], name: String, overrides text: String, _ overrides: KeyOverrides) throws(StoreError) -> (EffectivePlan, [UInt8]) {
        try effectivePlans.value(for: EffectivePlanSource(plan: planBytes, overrides: text)) { () throws(StoreError) in
            let plan: Plan = try Self.decode(planBytes, "plan \(name)")
            let effective = plan.resolved(with: overrides)
            return (effective, try Self.json(effective))
        }
    }

    /// An anonymous caller's entry, made from the plan its id names (nothing is stored for it): the
    /// plan as it is, never revoked, or nil when no such plan is stored. No record can be created
    /// for such an id (`createKey` and `load` refuse it), so the admin API changes the plan instead.
    private func anonymousEntry(keyID: String, plan name: String, client: String, version reply: RedisReply,
                                on connection: RedisConnection) throws(StoreError) -> RegistryEntry? {
        let version = try Self.version(reply)
        guard let planBytes = try self.storedPlanBytes(named: name, asOf: version, on: connection) else { return nil }
        let (effective, json) = try Self.resolved(planBytes, name: name, overrides: "", KeyOverrides())
        return RegistryEntry(
            key: KeyRecord(id: keyID, name: "anonymous " + client, plan: name),
            revoked: false,
            effectivePlan: effective,
            effectivePlanJSON: json,
            version: version
        )
    }

    /// The stored plan named `name`; `.corruptRecord` when key `keyID` names a plan that is not stored.
    func plan(named name: String, for keyID: String, on connection: RedisConnection) throws(StoreError) -> Plan {
        try Self.decode(try self.planBytes(named: name, for: keyID, on: connection), "plan \(name)")
    }

    /// The stored JSON of the plan named `name` (as of registry `version`, when the caller read it
    /// with the key: see `PlanVersionCache`); `.corruptRecord` when it is not stored.
    func planBytes(named name: String, for keyID: String, asOf version: UInt64? = nil, on connection: RedisConnection) throws(StoreError) -> [UInt8] {
        let stored = if let version {
            try self.storedPlanBytes(named: name, asOf: version, on: connection)
        } else {
            try self.storedPlanBytes(named: name, on: connection)
        }
        guard let planBytes = stored else {
            throw StoreError(.corruptRecord, "key \(keyID.prefix(12)) names plan \"\(name)\", which is not stored")
        }
        return planBytes
    }

    /// The stored JSON of the plan named `name`, nil when there is no such plan.
    private func storedPlanBytes(named name: String, on connection: RedisConnection) throws(StoreError) -> [UInt8]? {
        try StoreError.wrapping("reading a plan") {
            try connection.send("HGET", RedisArgument(RedisKeys.plans), RedisArgument(name))
        }.bytes
    }

    /// The stored JSON of the plan named `name` as of registry `version` (read in the same trip as
    /// the key), nil when there is no such plan: held for a moment, so repeated lookups skip the read.
    private func storedPlanBytes(named name: String, asOf version: UInt64, on connection: RedisConnection) throws(StoreError) -> [UInt8]? {
        try self.plansByVersion.bytes(named: name, version: version) { () throws(StoreError) in
            try self.storedPlanBytes(named: name, on: connection)
        }
    }

    /// The field/value pairs of an `HGETALL` reply.
    static func fields(_ reply: RedisReply) -> [String: String] {
        var fields: [String: String] = [:]
        let elements = reply.array ?? []
        for index in stride(from: 0, to: elements.count - 1, by: 2) {
            if let field = elements[index].string, let value = elements[index + 1].string { fields[field] = value }
        }
        return fields
    }

    /// A key record read back from its hash fields.
    static func storedKey(keyID: String, fields: [String: String]) throws(StoreError) -> RegistryKey {
        guard let name = fields["name"], let planName = fields["plan"], let overridesText = fields["overrides"] else {
            throw StoreError(.corruptRecord, "registry record of key \(keyID.prefix(12)) lacks name, plan or overrides")
        }
        let overrides = try Self.overrides.value(for: overridesText) { () throws(StoreError) -> KeyOverrides in
            try Self.decode(Array(overridesText.utf8), "overrides of key \(keyID.prefix(12))")
        }
        let stripe = fields["stripe"].flatMap { $0.isEmpty ? nil : $0 }
        return RegistryKey(
            key: KeyRecord(id: keyID, name: name, plan: planName, overrides: overrides, stripeCustomer: stripe),
            revoked: fields["revoked"] == "1",
            managedByAdmin: fields["src"] == "admin"
        )
    }

    /// Sets hash fields whose value differs; returns how many changed.
    ///
    /// KEYS[1] the hash. ARGV[1] n, then n field/value pairs to set, then pairs to set only if absent.
    static let upsertScript = RedisScript(upsertLua)

    /// `upsertScript` for one key record from the config: does nothing once the admin API owns the record.
    static let configKeyScript = RedisScript("""
    if redis.call('HGET', KEYS[1], 'src') == 'admin' then
      return 0
    end
    """ + "\n" + upsertLua)

    private static let upsertLua = """
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
    """

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

    /// The registry version's read, to pipeline with other work; its reply goes to `version(_:)`.
    public static let versionStep = RedisPipelineStep.command(["GET", RedisArgument(RedisKeys.version)])

    /// The registry version a `versionStep` (or `GET` of it) answered.
    public static func version(_ reply: RedisReply) throws(StoreError) -> UInt64 {
        if let message = reply.errorMessage { throw StoreError(.redis, "reading the registry version: \(message)") }
        if reply.isNull { return 0 }
        guard let value = reply.int, value >= 0 else {
            throw StoreError(.corruptRecord, "\(RedisKeys.version) holds \(reply)")
        }
        return UInt64(value)
    }
}
