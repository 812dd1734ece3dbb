/// A slice of a key's quota for one feature and period, granted to one sidecar until `expiresAt`.
public struct Lease: Sendable, Hashable, Codable {
    /// The collector-assigned id, unique per key, feature and period.
    public var id: UInt64
    /// Who holds it (a sidecar id).
    public var holder: String
    /// The API key id it belongs to.
    public var key: String
    /// The feature it belongs to.
    public var feature: FeatureName
    /// The period id it belongs to; a lease never outlives its period.
    public var periodID: String
    /// Units granted.
    public var units: UInt64
    /// When the collector reclaims whatever is unused.
    public var expiresAt: Timestamp

    /// Creates a lease.
    public init(id: UInt64, holder: String, key: String, feature: FeatureName, periodID: String, units: UInt64, expiresAt: Timestamp) {
        self.id = id
        self.holder = holder
        self.key = key
        self.feature = feature
        self.periodID = periodID
        self.units = units
        self.expiresAt = expiresAt
    }
}

/// The quota of one key, feature and period as the collector sees it when granting leases.
public struct QuotaAvailability: Sendable, Hashable, Codable {
    /// The limit after overrides.
    public var limit: UInt64
    /// Credited top-up units this period.
    public var credits: UInt64
    /// Units reported used this period (within the included quota).
    public var used: UInt64
    /// Units granted in leases that are neither used, returned nor expired.
    public var outstanding: UInt64

    /// Creates availability figures.
    public init(limit: UInt64, credits: UInt64 = 0, used: UInt64 = 0, outstanding: UInt64 = 0) {
        self.limit = limit
        self.credits = credits
        self.used = used
        self.outstanding = outstanding
    }

    /// Quota nobody holds: `limit + credits − used − outstanding`, never below zero.
    public var unleased: UInt64 {
        let (total, overflow) = limit.addingReportingOverflow(credits)
        let included = overflow ? UInt64.max : total
        let (taken, overflow2) = used.addingReportingOverflow(outstanding)
        if overflow2 { return 0 }
        return included > taken ? included - taken : 0
    }
}

/// Sizes lease grants so the fleet's outstanding leases never exceed the quota left, and grants
/// shrink as the quota runs out.
///
/// Grant = `min(max(requested, minSlice), maxSlice, max(1, unleased / (shareDivisor × holders)), unleased)`.
/// The share term is what shrinks grants: with `holders` sidecars each taking at most
/// `1/(k·holders)` of what is left, the last units are spread thinly instead of being stranded in one
/// sidecar's lease. The final `unleased` term is the safety bound: no grant exceeds what nobody holds.
public struct LeaseAllocator: Sendable, Hashable, Codable {
    /// The smallest grant worth a round trip while quota is plentiful (a request is raised to it).
    public var minSlice: UInt64
    /// The largest grant.
    public var maxSlice: UInt64
    /// `k` in `unleased / (k · holders)`; at least 1.
    public var shareDivisor: UInt64
    /// How long a lease lives, in nanoseconds.
    public var ttlNanoseconds: Int64

    /// Creates an allocator (defaults: slices of 1...1000 units, k = 2, 30 s leases).
    public init(minSlice: UInt64 = 1, maxSlice: UInt64 = 1000, shareDivisor: UInt64 = 2, ttl: Duration = .seconds(30)) {
        self.minSlice = minSlice
        self.maxSlice = Swift.max(minSlice, maxSlice)
        self.shareDivisor = Swift.max(1, shareDivisor)
        self.ttlNanoseconds = Swift.max(0, ttl.saturatingNanoseconds)
    }

    /// The units to grant for a request of `requested` when `unleased` units remain and `activeHolders`
    /// sidecars (the requester included) hold or want leases. Zero when nothing remains or nothing was asked.
    public func grantSize(requested: UInt64, unleased: UInt64, activeHolders: Int) -> UInt64 {
        guard requested > 0, unleased > 0 else { return 0 }
        let holders = UInt64(Swift.max(1, activeHolders))
        let (divisor, overflow) = shareDivisor.multipliedReportingOverflow(by: holders)
        let share = Swift.max(1, overflow ? 0 : unleased / divisor)
        let wanted = Swift.min(Swift.max(requested, minSlice), maxSlice)
        return Swift.min(wanted, share, unleased)
    }

    /// A lease for `holder`, or nil when nothing can be granted. It expires after the ttl or at
    /// `periodEnd`, whichever is first, because quota of an ended period is worthless.
    public func grant(
        id: UInt64, holder: String, key: String, feature: FeatureName, period: Period,
        requested: UInt64, availability: QuotaAvailability, activeHolders: Int, at now: Timestamp
    ) -> Lease? {
        let units = grantSize(requested: requested, unleased: availability.unleased, activeHolders: activeHolders)
        guard units > 0 else { return nil }
        let expiry = Swift.min(now.advanced(byNanoseconds: ttlNanoseconds), period.end)
        return Lease(id: id, holder: holder, key: key, feature: feature, periodID: period.id, units: units, expiresAt: expiry)
    }
}
