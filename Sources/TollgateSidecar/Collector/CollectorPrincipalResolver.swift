import TollgateCore

/// Resolves API keys through the collectors, via the sidecar's `KeyDirectory` cache.
///
/// Threading: `Sendable`. `cached` is a locked dictionary read on the event loop; `resolve` costs
/// one round trip to a collector the first time a key is seen (shared by concurrent requests).
public struct CollectorPrincipalResolver: PrincipalResolver {
    private let directory: KeyDirectory
    private let gate: QuotaGate?

    /// A resolver backed by `directory`; with `gate`, a key's lookup also brings its first lease.
    public init(directory: KeyDirectory, gate: QuotaGate? = nil) {
        self.directory = directory
        self.gate = gate
    }

    public func cached(keyID: String) -> Principal? {
        directory.cached(keyID).map { Self.principal(keyID, $0) }
    }

    public func resolve(keyID: String) async -> Principal? {
        // No collector answered in time: the key cannot be checked (503), never admitted free, and
        // never called unknown (401) when it may be perfectly good.
        guard let entry = try? await directory.resolve(keyID) else { return nil }
        return Self.principal(keyID, entry)
    }

    /// One round trip for a key never seen: the lookup carries the first lease request for
    /// `feature`, and the grant primes the gate before the call is decided.
    public func resolve(keyID: String, feature: FeatureName) async -> Principal? {
        let lease = gate?.firstLeaseRequest(keyID: keyID, feature: feature)
        guard let (entry, grant) = try? await directory.resolve(keyID, lease: lease) else { return nil }
        let principal = Self.principal(keyID, entry)
        if let gate, let grant, let plan = principal.gatePlan {
            gate.prime(GateRequest(keyID: keyID, plan: plan, feature: feature), with: grant, at: gate.now())
        }
        return principal
    }

    private static func principal(_ keyID: String, _ entry: KeyDirectory.Entry) -> Principal {
        switch entry {
        case .known(let key): Principal(keyID: keyID, plan: key.plan, isKnown: true, gatePlan: key.gatePlan)
        case .unknown: .unknown(keyID: keyID)
        }
    }
}
