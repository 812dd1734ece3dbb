import TollgateCore

/// What one registry change did: whether anything changed, and the registry version to publish it under.
public struct RegistryChange: Sendable, Hashable {
    /// False when the registry already held the requested state (nothing written, no version bump).
    public var changed: Bool
    /// The version `INCR`ed for this change, or the current version when nothing changed.
    public var version: UInt64

    /// A change with the given fields.
    public init(changed: Bool, version: UInt64) {
        self.changed = changed
        self.version = version
    }
}

/// What crediting units to a key did.
public struct CreditResult: Sendable, Hashable {
    /// How the credit was taken.
    public enum Outcome: String, Sendable, Hashable {
        /// Credited now.
        case applied
        /// The idempotency key was used before for the same feature and units: nothing credited again.
        case duplicate
        /// The idempotency key was used before for another feature or another number of units: refused.
        case conflict
    }

    /// How the credit was taken.
    public var outcome: Outcome
    /// The feature credited.
    public var feature: FeatureName
    /// The period the units were credited to (for a duplicate: the period of the first credit).
    public var periodID: String
    /// Units this call credited (for a duplicate or conflict: what the first credit recorded).
    public var units: UInt64
    /// Everything credited to the key, feature and period so far.
    public var totalCredit: UInt64
    /// The registry version this credit was published under (`applied`), or the current version.
    public var version: UInt64

    /// A result with the given fields.
    public init(outcome: Outcome, feature: FeatureName, periodID: String, units: UInt64, totalCredit: UInt64, version: UInt64) {
        self.outcome = outcome
        self.feature = feature
        self.periodID = periodID
        self.units = units
        self.totalCredit = totalCredit
        self.version = version
    }
}
