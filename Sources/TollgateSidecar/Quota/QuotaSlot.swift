import TollgateCore

#if canImport(Glibc)
import Glibc
#endif

/// What a sidecar holds for one key and metered feature in the current period.
///
/// Kept small (the gate caches one per key): the period as its bounds and id (the id, at most 15
/// characters, lives inside the `String` without a heap block), the leases as a `LeaseBalance`, and
/// the figures of the last grant. Waiting calls are parked outside, in the gate.
///
/// Threading: a value owned by `QuotaGate`, only touched under its lock.
struct QuotaSlot {
    /// The period the slot is for, `[periodStart, periodEnd)`; a call in a later period starts a
    /// fresh slot (lazy rollover).
    var periodStart: Timestamp
    var periodEnd: Timestamp
    var periodID: String
    /// Strict mode: leases held.
    var balance: LeaseBalance
    /// The collector granted nothing (or pushed `exhausted`): refuse locally once the leases are spent,
    /// and ask again only after `recheckAt`.
    var exhausted = false
    /// The last request to the collector failed: apply the unreachable policy until `retryAt`.
    var unreachable = false
    /// Whether `unleased` and `credits` come from the collector yet.
    var figuresKnown = false
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

    init(period: Period, initialRequest: UInt64) {
        self.periodStart = period.start
        self.periodEnd = period.end
        self.periodID = period.id
        self.balance = LeaseBalance(expiryMargin: .seconds(1))
        self.nextRequest = initialRequest
        self.lastAdmit = MonotonicTicks.now()
    }

    /// Whether `t` falls within the slot's period.
    @inline(__always)
    func contains(_ t: Timestamp) -> Bool { t >= periodStart && t < periodEnd }

    /// The period's length in whole seconds (the `w` of a `RateLimit-Policy`).
    var periodSeconds: UInt64 { periodStart.secondsRoundedUp(until: periodEnd) }
}

/// A request parked until the collector answers.
struct QuotaWaiter {
    var request: GateRequest
    var continuation: CheckedContinuation<GateVerdict, Never>
    /// When it started waiting (monotonic): a waiter is answered within the request timeout.
    var since = ContinuousClock.now
}

/// Per-key state: the slot of the key's first metered feature inline, anything rarer behind a
/// reference that stays nil for most keys.
///
/// Threading: a value owned by `QuotaGate`, only touched under its lock.
struct KeyQuota {
    /// The key's plan when last seen (an index into the gate's plan names), so a fleet-wide plan
    /// change finds its keys.
    var plan: UInt32
    /// The feature `slot` is for (an index into the gate's feature names); `noFeature` before any.
    var feature: UInt32 = KeyQuota.noFeature
    /// How many sidecars share the key's rate tier (the last grant's holders).
    var bucketShare: UInt32 = 1
    /// Highest update version applied to this key.
    var version: UInt64 = 0
    /// The slot of `feature`.
    var slot: QuotaSlot?
    /// Slots of further metered features and the rate tier's bucket, when the key has them.
    var extras: KeyQuotaExtras?

    static let noFeature = UInt32.max

    init(plan: UInt32) {
        self.plan = plan
    }

    /// Every slot with its feature index.
    var allSlots: [(feature: UInt32, slot: QuotaSlot)] {
        var all: [(UInt32, QuotaSlot)] = []
        if let slot { all.append((feature, slot)) }
        if let extras { all += extras.slots.map { ($0.key, $0.value) } }
        return all
    }
}

/// What few keys need: more than one metered feature, a rate tier.
///
/// Threading: owned by one `KeyQuota`, only touched under the gate's lock.
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
