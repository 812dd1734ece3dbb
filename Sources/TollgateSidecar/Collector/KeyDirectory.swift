import Foundation
import TollgateCore
import TollgateWire

/// What a sidecar knows of one API key, learnt from the collector.
public struct KnownKey: Sendable, Hashable {
    /// Hex SHA-256 of the key.
    public var id: String
    /// The key's display name.
    public var name: String
    /// The key's plan name.
    public var plan: String
    /// The plan with the key's overrides applied, as the collector resolved it.
    public var effectivePlan: EffectivePlan?
    /// `effectivePlan` compiled for the quota gate, one instance shared by every key on the same plan.
    public var gatePlan: GatePlan?
    /// The update version this reflects; older updates are dropped.
    public var version: UInt64
}

/// The sidecar's cache of keys and plans, filled from the collector on demand.
///
/// Threading: safe from any thread. ``cached(_:)`` is a lock and a dictionary read, for the
/// proxy's hot path; ``resolve(_:)`` is the slow path for a key this sidecar has not seen, and
/// costs one round trip to a collector, shared by every request waiting on the same key.
public final class KeyDirectory: Sendable {
    /// A cache entry: known, or known to be unknown until `until`.
    public enum Entry: Sendable, Hashable {
        /// The collector knows the key.
        case known(KnownKey)
        /// The collector said it does not know the key (or it is revoked); asked again after expiry.
        case unknown(until: ContinuousClock.Instant)
    }

    private let channel: CollectorRequestChannel
    private let lookupTimeout: Duration
    private let negativeTTL: Duration
    private let storage: KeyDirectoryStorage

    /// Creates a directory that asks collectors over `channel`, keeping its answers in `cache`
    /// (pass the quota gate's, so both share one table).
    public init(
        channel: CollectorRequestChannel, lookupTimeout: Duration = .milliseconds(500), negativeTTL: Duration = .seconds(5),
        cache: KeyCache = KeyCache()
    ) {
        self.channel = channel
        self.lookupTimeout = lookupTimeout
        self.negativeTTL = negativeTTL
        self.storage = KeyDirectoryStorage(cache: cache)
    }

    /// The cached answer for `keyID`, without waiting; nil when the sidecar must ask.
    public func cached(_ keyID: String) -> Entry? {
        guard let entry = storage.entry(keyID) else { return nil }
        if case .unknown(let until) = entry, until <= .now { return nil }
        return entry
    }

    /// The answer for `keyID`, asking a collector when it is not cached. Throws when no collector
    /// answered in time: the caller refuses the request (never admits it for free).
    public func resolve(_ keyID: String) async throws -> Entry {
        try await resolve(keyID, lease: nil).entry
    }

    /// As ``resolve(_:)``, asking in the same round trip for `lease` (the key's first lease);
    /// the grant comes back to the caller that actually asked (concurrent callers share the lookup).
    public func resolve(_ keyID: String, lease: Tollgate_V1_LeaseRequest?) async throws -> (entry: Entry, grant: Tollgate_V1_LeaseGrant?) {
        if let entry = cached(keyID) { return (entry, nil) }
        let grant = GrantBox()
        let entry = try await storage.coalesce(keyID) { [channel, lookupTimeout] in
            var lookup = Tollgate_V1_KeyLookup()
            lookup.keyID = keyID
            if let lease { lookup.lease = lease }
            let reply = try await channel.request(.keyLookup(lookup), timeout: lookupTimeout)
            guard case .keyInfo(let info)? = reply.body, info.keyID == keyID else {
                throw CollectorRequestChannel.RequestError(reason: "unexpected reply to key lookup")
            }
            if info.hasLease { grant.set(info.lease) }
            return self.entry(from: info)
        }
        return (entry, grant.get())
    }

    /// Applies what the collector pushed or answered; an older version never replaces a newer one.
    public func apply(_ info: Tollgate_V1_KeyInfo) {
        storage.store(info.keyID, entry(from: info))
    }

    /// Forgets a key (revoked or changed), so the next request asks again.
    public func invalidate(_ keyID: String) {
        storage.remove(keyID)
    }

    /// Refuses a revoked key from now on (until a newer answer says otherwise).
    public func revoke(_ keyID: String, version: UInt64) {
        storage.store(keyID, .unknown(until: .now + negativeTTL))
    }

    /// Asks the collector again for a key already cached, keeping the old answer until the new one
    /// arrives (a plan change must not make requests wait).
    public func refresh(_ keyID: String) async {
        var lookup = Tollgate_V1_KeyLookup()
        lookup.keyID = keyID
        guard let reply = try? await channel.request(.keyLookup(lookup), timeout: lookupTimeout),
              case .keyInfo(let info)? = reply.body, info.keyID == keyID
        else {
            invalidate(keyID)  // could not refresh: the next request asks afresh
            return
        }
        storage.store(keyID, entry(from: info), replacingOlder: true)
    }

    /// The ids of every cached key, known or not.
    public func cachedKeys() -> [String] {
        storage.keys { _ in true }
    }

    /// The ids of cached keys on plan `plan`.
    public func keys(onPlan plan: String) -> [String] {
        storage.keys { entry in
            if case .known(let key) = entry { return key.plan == plan }
            return false
        }
    }

    private func entry(from info: Tollgate_V1_KeyInfo) -> Entry {
        guard info.known, !info.revoked else { return .unknown(until: .now + negativeTTL) }
        let plan = info.effectivePlanJson.isEmpty ? nil : try? JSONDecoder().decode(EffectivePlan.self, from: info.effectivePlanJson)
        return .known(KnownKey(
            id: info.keyID, name: info.name, plan: info.plan, effectivePlan: plan, gatePlan: plan.map(GatePlan.init), version: info.version
        ))
    }
}

/// The answers and in-flight lookups behind `KeyDirectory`.
///
/// Answers live in the rows of a `KeyCache` (shared with the quota gate), compactly: a known key
/// keeps its name, its version and a reference to a `SharedPlan`, one per distinct plan name and
/// effective plan, so the many keys on a plan without overrides share one decoded `EffectivePlan`
/// (and one `GatePlan`). `KnownKey` values are made on the way out, with the caller's own key id string.
// @unchecked Sendable: every mutable property is guarded by the cache's lock.
final class KeyDirectoryStorage: @unchecked Sendable {
    private let cache: KeyCache
    private var lock: NSLock { cache.lock }
    private var plans: [SharedPlan.Key: SharedPlan] = [:]
    private var waiters: [String: [CheckedContinuation<KeyDirectory.Entry, any Error>]] = [:]
    /// Unknown answers in the order they were stored, so they can be forgotten: past their TTL, and
    /// the oldest first beyond `maxUnknown`. Without this a flood of made-up keys would keep a row
    /// each for ever (a read only skips an expired one).
    private var unknownOrder: [(id: CompactKeyID, until: ContinuousClock.Instant)] = []
    private var unknownHead = 0
    let maxUnknown: Int

    init(cache: KeyCache, maxUnknown: Int = 65_536) {
        self.cache = cache
        self.maxUnknown = max(1, maxUnknown)
    }

    /// Unknown answers held (not yet forgotten), for tests.
    var unknownCount: Int { lock.withLock { unknownOrder.count - unknownHead } }

    func entry(_ keyID: String) -> KeyDirectory.Entry? {
        let id = CompactKeyID(keyID)
        return lock.withLock { cache.state.lookup(id)?.entry(keyID) }
    }

    func store(_ keyID: String, _ entry: KeyDirectory.Entry, replacingOlder: Bool = false) {
        lock.withLock {
            if replacingOlder { replaceLocked(CompactKeyID(keyID), entry) } else { storeLocked(keyID, entry) }
        }
    }

    func keys(where matches: (KeyDirectory.Entry) -> Bool) -> [String] {
        lock.withLock {
            cache.state.keys.entries.compactMap { row in
                guard let lookup = row.value.lookup else { return nil }
                let keyID = row.id.string
                return matches(lookup.entry(keyID)) ? keyID : nil
            }
        }
    }

    /// Distinct plans held, for tests and the benchmark.
    var sharedPlans: Int { lock.withLock { plans.count } }

    private func storeLocked(_ keyID: String, _ entry: KeyDirectory.Entry) {
        let id = CompactKeyID(keyID)
        if case .known(let new) = entry, case .known(_, _, let version)? = cache.state.lookup(id), version > new.version { return }
        replaceLocked(id, entry)
    }

    private func replaceLocked(_ id: CompactKeyID, _ entry: KeyDirectory.Entry) {
        let stored: StoredEntry
        switch entry {
        case .known(let key): stored = .known(name: key.name, plan: share(key.plan, key.effectivePlan), version: key.version)
        case .unknown(let until): stored = .unknown(until: until)
        }
        if let old = cache.state.setLookup(stored, for: id) { release(old) }
        if case .unknown(let until) = entry {
            unknownOrder.append((id, until))
            forgetUnknownLocked(now: .now)
        }
    }

    /// Forgets unknown answers past their TTL, and the oldest beyond `maxUnknown`; a row whose
    /// answer has changed since (known now, or a later unknown) is left alone.
    private func forgetUnknownLocked(now: ContinuousClock.Instant) {
        while unknownHead < unknownOrder.count {
            let (id, until) = unknownOrder[unknownHead]
            guard until <= now || unknownOrder.count - unknownHead > maxUnknown else { break }
            unknownHead += 1
            if case .unknown(let held)? = cache.state.lookup(id), held == until {
                if let old = cache.state.setLookup(nil, for: id) { release(old) }
            }
        }
        if unknownHead > 1_024, unknownHead * 2 > unknownOrder.count {
            unknownOrder.removeFirst(unknownHead)
            unknownHead = 0
        }
    }

    func remove(_ keyID: String) {
        lock.withLock {
            if let old = cache.state.setLookup(nil, for: CompactKeyID(keyID)) { release(old) }
        }
    }

    /// The shared instance for `name` and `plan`, counted as used once more.
    private func share(_ name: String, _ plan: EffectivePlan?) -> SharedPlan {
        let key = SharedPlan.Key(name: name, plan: plan)
        let shared = plans[key] ?? SharedPlan(name: name, effectivePlan: plan)
        plans[key] = shared
        shared.users += 1
        return shared
    }

    /// Counts one use of `entry`'s plan less, forgetting the plan when no key has it.
    private func release(_ entry: StoredEntry) {
        guard case .known(_, let shared, _) = entry else { return }
        shared.users -= 1
        if shared.users <= 0 { plans[SharedPlan.Key(name: shared.name, plan: shared.effectivePlan)] = nil }
    }

    /// Runs `fetch` once per key however many requests wait for it, and caches its answer.
    ///
    /// The first caller fetches; later callers park a continuation that the first resumes.
    func coalesce(_ keyID: String, _ fetch: @Sendable () async throws -> KeyDirectory.Entry) async throws -> KeyDirectory.Entry {
        let leads: Bool = lock.withLock {
            if waiters[keyID] != nil { return false }
            waiters[keyID] = []
            return true
        }
        guard leads else {
            return try await withCheckedThrowingContinuation { continuation in
                lock.withLock {
                    if waiters[keyID] != nil {
                        waiters[keyID]!.append(continuation)
                    } else if let stored = cache.state.lookup(CompactKeyID(keyID)) {
                        continuation.resume(returning: stored.entry(keyID))  // the leader finished meanwhile
                    } else {
                        continuation.resume(throwing: CollectorRequestChannel.RequestError.timedOut)
                    }
                }
            }
        }
        var result: Result<KeyDirectory.Entry, any Error>
        do {
            result = .success(try await fetch())
        } catch {
            result = .failure(error)
        }
        let parked: [CheckedContinuation<KeyDirectory.Entry, any Error>] = lock.withLock {
            if case .success(let entry) = result {
                storeLocked(keyID, entry)
                // Answer with the entry as stored, whose plan is the one every key on it shares.
                if let stored = cache.state.lookup(CompactKeyID(keyID)) { result = .success(stored.entry(keyID)) }
            }
            return waiters.removeValue(forKey: keyID) ?? []
        }
        for continuation in parked { continuation.resume(with: result) }
        return try result.get()
    }
}

/// A cached answer as `KeyDirectoryStorage` keeps it.
enum StoredEntry {
    case known(name: String, plan: SharedPlan, version: UInt64)
    case unknown(until: ContinuousClock.Instant)

    /// The public entry, with `keyID` (the caller's string) as the key's id.
    func entry(_ keyID: String) -> KeyDirectory.Entry {
        switch self {
        case .known(let name, let plan, let version):
            .known(KnownKey(id: keyID, name: name, plan: plan.name, effectivePlan: plan.effectivePlan, gatePlan: plan.gatePlan, version: version))
        case .unknown(let until):
            .unknown(until: until)
        }
    }
}

/// One plan name and effective plan (and its `GatePlan`), shared by every cached key that has exactly it.
///
/// Threading: `users` is only touched under `KeyDirectoryStorage`'s lock; the rest is immutable.
final class SharedPlan: @unchecked Sendable {
    struct Key: Hashable {
        var name: String
        var plan: EffectivePlan?
    }

    let name: String
    let effectivePlan: EffectivePlan?
    let gatePlan: GatePlan?
    /// Cached keys referring to it.
    var users = 0

    init(name: String, effectivePlan: EffectivePlan?) {
        self.name = name
        self.effectivePlan = effectivePlan
        self.gatePlan = effectivePlan.map(GatePlan.init)
    }
}

/// The grant a key lookup brought back, handed from the lookup task to its caller.
// @unchecked Sendable: `value` is only touched under `lock`.
final class GrantBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Tollgate_V1_LeaseGrant?

    func set(_ grant: Tollgate_V1_LeaseGrant) { lock.withLock { value = grant } }

    func get() -> Tollgate_V1_LeaseGrant? { lock.withLock { value } }
}
