import TollgateCore

/// What a sidecar holds for one key and metered feature in the current period.
///
/// Threading: a value owned by `QuotaGate`, only touched under its lock.
struct QuotaSlot {
    /// The period the slot is for; a call in a later period starts a fresh slot (lazy rollover).
    var period: Period
    /// Strict mode: leases held.
    var balance: LeaseBalance
    /// The collector granted nothing (or pushed `exhausted`): refuse locally once the leases are spent,
    /// and ask again only after `recheckAt`.
    var exhausted = false
    var recheckAt = Timestamp.min
    /// The last request to the collector failed: apply the unreachable policy until `retryAt`.
    var unreachable = false
    var retryAt = Timestamp.min
    /// Figures from the last grant (or query): units nobody held, used, credited.
    var unleased: UInt64 = 0
    var used: UInt64 = 0
    var credits: UInt64 = 0
    var figuresKnown = false
    var figuresAt = Timestamp.min
    /// Optimistic mode: units admitted here since the figures arrived.
    var spentSinceFigures: UInt64 = 0
    /// The size of the next lease request: doubles while grants come back full, up to the maximum.
    var nextRequest: UInt64
    /// Requests waiting for a lease (or figures), first come first served.
    var waiters: [QuotaWaiter] = []
    /// When this sidecar last admitted a call of the slot (monotonic), to tell idle leases apart.
    var lastAdmit = ContinuousClock.now

    init(period: Period, initialRequest: UInt64) {
        self.period = period
        self.balance = LeaseBalance(lowWatermark: 0, expiryMargin: .seconds(1))
        self.nextRequest = initialRequest
    }
}

/// A request parked until the collector answers.
struct QuotaWaiter {
    var request: GateRequest
    var continuation: CheckedContinuation<GateVerdict, Never>
    /// When it started waiting (monotonic): a waiter is answered within the request timeout.
    var since = ContinuousClock.now
}

/// Per-key state: the slots of its metered features and its share of the rate tier.
///
/// Threading: a value owned by `QuotaGate`, only touched under its lock.
struct KeyQuota {
    /// The key's plan when last seen, so a fleet-wide plan change finds its keys.
    var planName: String
    var slots: [FeatureName: QuotaSlot] = [:]
    /// The key's token bucket (this sidecar's share of the tier), made on first use.
    var bucket: TokenBucket?
    /// The tier the bucket was made for, and how many sidecars share it.
    var bucketTier: RateTier?
    var bucketShare: UInt64 = 1
    /// Highest update version applied to this key.
    var version: UInt64 = 0
}
