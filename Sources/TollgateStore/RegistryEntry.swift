import TollgateCore

/// An API key as the registry takes it from configuration (the store does not import the config module).
public struct RegistryKey: Sendable, Hashable {
    /// Hex SHA-256 of the API key.
    public var id: String
    /// A human name for dashboards; never the key.
    public var name: String
    /// The plan's name.
    public var plan: String
    /// Per-key changes to the plan.
    public var overrides: KeyOverrides
    /// The Stripe customer billed for this key, if any.
    public var stripeCustomer: String?

    /// A key with the given fields.
    public init(id: String, name: String, plan: String, overrides: KeyOverrides = KeyOverrides(), stripeCustomer: String? = nil) {
        self.id = id
        self.name = name
        self.plan = plan
        self.overrides = overrides
        self.stripeCustomer = stripeCustomer
    }
}

/// What the registry knows of one key: its record, its effective plan, and the registry version.
public struct RegistryEntry: Sendable, Hashable {
    /// The key as stored.
    public var key: RegistryKey
    /// Whether the key was revoked (its calls are refused).
    public var revoked: Bool
    /// The key's plan with its overrides applied.
    public var effectivePlan: EffectivePlan
    /// `effectivePlan` as JSON (sorted keys), what `KeyInfo.effective_plan_json` carries.
    public var effectivePlanJSON: [UInt8]
    /// The registry update version this entry was read at.
    public var version: UInt64

    /// An entry with the given fields.
    public init(key: RegistryKey, revoked: Bool, effectivePlan: EffectivePlan, effectivePlanJSON: [UInt8], version: UInt64) {
        self.key = key
        self.revoked = revoked
        self.effectivePlan = effectivePlan
        self.effectivePlanJSON = effectivePlanJSON
        self.version = version
    }
}
