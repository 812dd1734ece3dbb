import TollgateCore

/// What the registry knows of one key: its record, its effective plan, and the registry version.
public struct RegistryEntry: Sendable, Hashable {
    /// The key as stored.
    public var key: KeyRecord
    /// Whether the key was revoked (its calls are refused).
    public var revoked: Bool
    /// The key's plan with its overrides applied.
    public var effectivePlan: EffectivePlan
    /// `effectivePlan` as JSON (sorted keys), what `KeyInfo.effective_plan_json` carries.
    public var effectivePlanJSON: [UInt8]
    /// The registry update version this entry was read at.
    public var version: UInt64

    /// An entry with the given fields.
    public init(key: KeyRecord, revoked: Bool, effectivePlan: EffectivePlan, effectivePlanJSON: [UInt8], version: UInt64) {
        self.key = key
        self.revoked = revoked
        self.effectivePlan = effectivePlan
        self.effectivePlanJSON = effectivePlanJSON
        self.version = version
    }
}

/// A key as the registry stores it, without its plan resolved: what listing keys returns.
public struct RegistryKey: Sendable, Hashable {
    /// The key as stored.
    public var key: KeyRecord
    /// Whether the key was revoked.
    public var revoked: Bool
    /// Whether the admin API changed the record (config loads then leave it alone).
    public var managedByAdmin: Bool

    /// A key with the given fields.
    public init(key: KeyRecord, revoked: Bool, managedByAdmin: Bool) {
        self.key = key
        self.revoked = revoked
        self.managedByAdmin = managedByAdmin
    }
}
