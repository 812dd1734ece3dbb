/// An API key as Tollgate stores it: hashed, with its plan and per-key overrides.
///
/// Config reads it from YAML, the store keeps it in the Redis registry: one type for both.
public struct KeyRecord: Hashable, Sendable {
    /// Hex SHA-256 of the API key. The key itself is never stored, logged or sent.
    public var id: String
    /// A human name for dashboards and the CLI (`demo-free`); never the key.
    public var name: String
    /// The plan's name.
    public var plan: String
    /// Values this key has instead of its plan's.
    public var overrides: KeyOverrides
    /// The Stripe customer billed for this key, when billing is on.
    public var stripeCustomer: String?

    /// Creates a record.
    public init(id: String, name: String, plan: String, overrides: KeyOverrides = KeyOverrides(), stripeCustomer: String? = nil) {
        self.id = id
        self.name = name
        self.plan = plan
        self.overrides = overrides
        self.stripeCustomer = stripeCustomer
    }
}
