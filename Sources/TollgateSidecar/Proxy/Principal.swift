import TollgateCore

/// Who a call is metered against: an API key's id and plan, or an anonymous client.
public struct Principal: Sendable, Hashable {
    /// The key id (hex SHA-256 of the API key), or `anon:<client IP>` for anonymous callers.
    public var keyID: String
    /// The key's plan, if known.
    public var plan: String?
    /// Whether the fleet knows the key; unknown keys are refused with 401.
    public var isKnown: Bool
    /// The key's plan with its overrides, compiled for the quota gate, which decides by it; nil
    /// skips the gate.
    public var gatePlan: GatePlan?
    /// The key's plan with its overrides.
    public var effectivePlan: EffectivePlan? { gatePlan?.effectivePlan }

    /// Creates a principal on a compiled plan (shared by the keys on it: see `KeyDirectory`).
    public init(keyID: String, plan: String?, isKnown: Bool, gatePlan: GatePlan?) {
        self.keyID = keyID
        self.plan = plan
        self.isKnown = isKnown
        self.gatePlan = gatePlan
    }

    /// Creates a principal, compiling `effectivePlan` for it.
    public init(keyID: String, plan: String?, isKnown: Bool, effectivePlan: EffectivePlan? = nil) {
        self.init(keyID: keyID, plan: plan, isKnown: isKnown, gatePlan: effectivePlan.map(GatePlan.init))
    }

    /// A key the fleet does not know.
    public static func unknown(keyID: String) -> Principal {
        Principal(keyID: keyID, plan: nil, isKnown: false)
    }
}

/// Maps a key id to a `Principal`: synchronously from a cache on the hot path, asynchronously otherwise.
///
/// Threading: `cached` is called on event loop threads for every request and must neither block
/// nor take a contended lock (read an immutable snapshot, an atomic reference, or per-thread state).
/// `resolve` is called only when `cached` returned nil; the proxy waits for it at most
/// `ProxyConfiguration.keyResolveTimeout`.
public protocol PrincipalResolver: Sendable {
    /// The principal for `keyID` if the answer is at hand, nil when it must be looked up.
    func cached(keyID: String) -> Principal?

    /// Looks `keyID` up (e.g. asks the collector); returns `.unknown` for a key the fleet does not
    /// know, and nil when it could not be checked (no collector answered): the proxy answers 503.
    func resolve(keyID: String) async -> Principal?

    /// As `resolve(keyID:)` for a call to `feature`; a resolver may use the round trip to fetch
    /// what that call will need (the key's first lease).
    func resolve(keyID: String, feature: FeatureName) async -> Principal?
}

extension PrincipalResolver {
    /// By default, the feature changes nothing.
    public func resolve(keyID: String, feature: FeatureName) async -> Principal? {
        await resolve(keyID: keyID)
    }
}

/// A fixed table of keys: for tests, benchmarks and single-node setups with keys in the config file.
///
/// Threading: immutable after init, safe anywhere.
public struct InMemoryPrincipalResolver: PrincipalResolver {
    private let table: [String: Principal]

    /// Creates a table from key ids (hex SHA-256, see `APIKeyHasher.keyID(for:)`) to plan names.
    public init(plansByKeyID: [String: String]) {
        var table: [String: Principal] = [:]
        for (keyID, plan) in plansByKeyID {
            table[keyID] = Principal(keyID: keyID, plan: plan, isKnown: true)
        }
        self.table = table
    }

    /// Answers from the table; an anonymous caller's id is known on the plan it names, and every
    /// other key not in the table is unknown.
    public func cached(keyID: String) -> Principal? {
        if let principal = table[keyID] { return principal }
        if let anonymous = AnonymousKeyID.parse(keyID) { return Principal(keyID: keyID, plan: anonymous.plan, isKnown: true) }
        return .unknown(keyID: keyID)
    }

    /// Same answer as `cached`.
    public func resolve(keyID: String) async -> Principal? {
        cached(keyID: keyID)
    }
}
