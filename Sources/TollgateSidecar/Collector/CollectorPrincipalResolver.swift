/// Resolves API keys through the collectors, via the sidecar's `KeyDirectory` cache.
///
/// Threading: `Sendable`. `cached` is a locked dictionary read on the event loop; `resolve` costs
/// one round trip to a collector the first time a key is seen (shared by concurrent requests).
public struct CollectorPrincipalResolver: PrincipalResolver {
    private let directory: KeyDirectory

    /// A resolver backed by `directory`.
    public init(directory: KeyDirectory) {
        self.directory = directory
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

    private static func principal(_ keyID: String, _ entry: KeyDirectory.Entry) -> Principal {
        switch entry {
        case .known(let key): Principal(keyID: keyID, plan: key.plan, isKnown: true, effectivePlan: key.effectivePlan)
        case .unknown: .unknown(keyID: keyID)
        }
    }
}
