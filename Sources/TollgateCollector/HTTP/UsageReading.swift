import TollgateConfig
import TollgateCore
import TollgateStore

/// The counters a `UsageReport` is built from: one key, feature and period at a time.
public protocol UsageCounterReading: Sendable {
    /// The counters of one key, feature and period (zero when nothing was counted).
    func counters(keyID: String, feature: String, periodID: String) async throws -> UsageCounters
}

/// What a collector needs to answer usage queries; implemented over Redis by `RedisUsageReader`.
///
/// Everything here reads the records enforcement writes (the registry, the counter hashes), so a
/// report, a bill and an overview show the numbers the sidecars decided by.
public protocol UsageReading: UsageCounterReading {
    /// The registry entry of a key, or nil when the fleet does not know it.
    func entry(keyID: String) async throws -> RegistryEntry?
    /// Every key in the registry (`tg:keys`), without plans resolved, sorted by name then id.
    func keys() async throws -> [RegistryKey]
    /// The names of every stored plan.
    func planNames() async throws -> Set<String>
}

extension UsageReading {
    /// The id of the key `text` names: a key id (64 hex) or an anonymous caller's id as is, else a configured name from
    /// `keyNames`, else the one registry key with that name. Nil when none is; throws
    /// `UsageQueryError.ambiguousName` when several keys share the name.
    public func resolveKey(_ text: String, keyNames: [String: String] = [:]) async throws -> String? {
        if APIKeyHasher.isKeyID(text) || AnonymousKeyID.parse(text) != nil { return text }
        if let id = keyNames[text] { return id }
        let matches = try await self.keys().filter { $0.key.name == text }
        guard matches.count <= 1 else { throw UsageQueryError.ambiguousName(text, count: matches.count) }
        return matches.first?.key.id
    }
}

/// Why a usage query was refused.
public enum UsageQueryError: Error, Sendable, Equatable {
    /// The period id fits none of the key's metered features.
    case badPeriod(String)
    /// No plan has this name (`?plan=`).
    case unknownPlan(String)
    /// Several keys share this name; use the key id.
    case ambiguousName(String, count: Int)
}
