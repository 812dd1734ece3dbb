import TollgateCore

#if canImport(Glibc)
import Glibc
#endif

/// What a sidecar holds for one key and metered feature in the current period.
///
/// Kept small (the gate caches one per key): the period as an index into the gate's
/// `PeriodTable`, the leases as a `LeaseBalance`, and the figures of the last grant. Waiting calls
/// are parked outside, in the gate.
///
/// Threading: a value owned by `QuotaGate`, only touched under its lock.
struct QuotaSlot {
    /// Strict mode: leases held.
    var balance: LeaseBalance
    /// The collector granted nothing (or pushed `exhausted`): refuse locally once the leases are spent,
    /// and ask again only after `recheckAt`.
    var exhausted = false
    /// The last request to the collector failed: apply the unreachable policy until `retryAt`.
    var unreachable = false
    /// Whether `unleased` and `credits` come from the collector yet.
    var figuresKnown = false
    /// The period the slot is for (an index into the gate's `PeriodTable`); a call in a later
    /// period starts a fresh slot (lazy rollover). Declared after the flags, it fills their padding.
    var period: UInt32
    var recheckAt = Timestamp.min
    var retryAt = Timestamp.min
    /// Figures from the last grant (or query): units nobody held, credited.
    var unleased: UInt64 = 0
    var credits: UInt64 = 0
    var figuresAt = Timestamp.min
    /// Optimistic mode (and uncapped overage): units admitted here since the figures arrived.
    var spentSinceFigures: UInt64 = 0
    /// The size of the next lease request: doubles while grants come back full, up to the maximum.
    var nextRequest: UInt64
    /// When this sidecar last admitted a call of the slot (`MonotonicTicks`), to tell idle leases apart.
    var lastAdmit: Int64

    init(period: UInt32, initialRequest: UInt64) {
        self.period = period
        self.balance = LeaseBalance(expiryMargin: .seconds(1))
        self.nextRequest = initialRequest
        self.lastAdmit = MonotonicTicks.now()
    }
}

/// A request parked until the collector answers.
struct QuotaWaiter {
    var request: GateRequest
    var continuation: CheckedContinuation<GateVerdict, Never>
    /// When it started waiting (monotonic): a waiter is answered within the request timeout.
    var since = ContinuousClock.now
}

/// One row of the sidecar's key table (`KeyCache`): the key directory's answer and the quota
/// gate's state for one key, side by side, so the two share the key id and the index entry.
///
/// The gate's part: the slot of the key's first metered feature inline, anything rarer behind a
/// reference that stays nil for most keys. A row the gate has not decided on (yet) has `plan ==
/// noPlan`; a row the directory has no answer in has `lookup == nil`. A row with neither is removed.
///
/// Threading: a value owned by `GateState`, only touched under the key cache's lock.
struct CachedKey {
    /// The key directory's answer, if it has one.
    var lookup: StoredEntry?
    /// The key's plan when the gate last saw it (an index into the gate's plan names), so a
    /// fleet-wide plan change finds its keys; `noPlan` when the gate holds nothing for the key.
    var plan: UInt32
    /// The feature `slot` is for (an index into the gate's feature names); `noFeature` before any.
    var feature: UInt32 = CachedKey.noFeature
    /// How many sidecars share the key's rate tier (the last grant's holders).
    var bucketShare: UInt32 = 1
    /// Highest update version the gate applied to this key.
    var version: UInt64 = 0
    /// Slots of further metered features and the rate tier's bucket, when the key has them.
    var extras: KeyQuotaExtras?
    /// The slot of `feature`.
    var slot: QuotaSlot?

    static let noFeature = UInt32.max
    static let noPlan = UInt32.max

    /// A row for the gate, on plan `plan`.
    init(plan: UInt32) {
        self.plan = plan
    }

    /// A row for the directory alone.
    init(lookup: StoredEntry) {
        self.lookup = lookup
        self.plan = Self.noPlan
    }

    /// Whether the gate holds state for the key.
    var inGate: Bool { plan != Self.noPlan }

    /// Drops the gate's part, keeping the directory's answer.
    mutating func leaveGate() {
        plan = Self.noPlan
        feature = Self.noFeature
        bucketShare = 1
        version = 0
        extras = nil
        slot = nil
    }
}

/// What few keys need: more than one metered feature, a rate tier.
///
/// Threading: owned by one `CachedKey`, only touched under the key cache's lock.
final class KeyQuotaExtras {
    /// Slots of metered features other than the key's first, by feature index.
    var slots: [UInt32: QuotaSlot] = [:]
    /// The key's token bucket (this sidecar's share of the tier), made on first use.
    var bucket: TokenBucket?
    /// The tier the bucket was made for.
    var bucketTier: RateTier?
}

/// A cheap monotonic clock in nanoseconds, for "how long since the last admission" (idle leases).
///
/// On Linux it is `CLOCK_MONOTONIC_COARSE` (a few nanoseconds to read, a few milliseconds of
/// resolution), which is plenty for an idle threshold of tens of milliseconds and keeps the clock
/// read off the cost of each decision.
enum MonotonicTicks {
    #if !os(Linux)
    private static let origin = ContinuousClock.now
    #endif

    static func now() -> Int64 {
        #if os(Linux)
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &spec)
        return Int64(spec.tv_sec) &* 1_000_000_000 &+ Int64(spec.tv_nsec)
        #else
        let elapsed = origin.duration(to: .now).components
        return elapsed.seconds &* 1_000_000_000 &+ elapsed.attoseconds / 1_000_000_000
        #endif
    }
}
