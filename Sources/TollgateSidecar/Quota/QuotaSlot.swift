import TollgateCore

#if canImport(Glibc)
import Glibc
#endif

/// What a sidecar holds for one key and metered feature in the current period.
///
/// Kept small (the gate caches one per key, 80 bytes): the period as an index into the gate's
/// `PeriodTable`, the leases as a `LeaseBalance` (its expiry margin is configuration, not stored
/// here), the figures of the last grant a steady strict key reads, and the time of the last
/// admission in 32 bits. What such a key never uses (the exhausted recheck and unreachable retry
/// times, bought credits, optimistic figures) lives behind `rare`, nil for most keys. Waiting calls
/// are parked outside, in the gate.
///
/// Threading: a value owned by `QuotaGate`, only touched under its lock.
struct QuotaSlot {
    /// Strict mode: leases held.
    var balance: LeaseBalance
    /// Whether `unleased` and `credits` come from the collector yet. (The flags and `period` fill
    /// the balance's tail padding.)
    var figuresKnown = false
    /// The collector granted nothing (or pushed `exhausted`): refuse locally once the leases are spent,
    /// and ask again only after `recheckAt`.
    var exhausted = false
    /// The last request to the collector failed: apply the unreachable policy until `retryAt`.
    var unreachable = false
    /// The period the slot is for (an index into the gate's `PeriodTable`); a call in a later
    /// period starts a fresh slot (lazy rollover).
    var period: UInt32
    /// Figures from the last grant (or query): units nobody held.
    var unleased: UInt64 = 0
    /// The size of the next lease request: doubles while grants come back full, up to the maximum.
    var nextRequest: UInt64
    /// When this sidecar last admitted a call of the slot, to tell idle leases apart: `MonotonicTicks`
    /// in milliseconds, modulo 2^32 (see `lastAdmitMilliseconds(_:)` and `idleMilliseconds(since:now:)`).
    var lastAdmit: UInt32
    /// What a steady strict key does not use; nil until something sets it (see `QuotaSlotRare`).
    private(set) var rare: QuotaSlotRare?

    init(period: UInt32, initialRequest: UInt64) {
        self.period = period
        self.balance = LeaseBalance()
        self.nextRequest = initialRequest
        self.lastAdmit = Self.lastAdmitMilliseconds(MonotonicTicks.now())
    }

    // MARK: Last admission

    /// `ticks` (`MonotonicTicks`, nanoseconds) as `lastAdmit` holds it: whole milliseconds, modulo 2^32.
    @inline(__always)
    static func lastAdmitMilliseconds(_ ticks: Int64) -> UInt32 {
        UInt32(truncatingIfNeeded: ticks / 1_000_000)
    }

    /// Milliseconds from `lastAdmit` to `now` (both as `lastAdmitMilliseconds` gives them).
    ///
    /// Overflow: the two are milliseconds modulo 2^32, so the difference is taken modulo 2^32 too
    /// and is exact for any gap under 2^32 ms (about 49.7 days), across the counter's wrap. A slot
    /// idle for longer reads as idle for the gap modulo 2^32 ms; the only use (returning an idle
    /// slot's units on `exhausted`) is then at worst skipped, and a lease outlives 49 days never.
    @inline(__always)
    static func idleMilliseconds(since lastAdmit: UInt32, now: UInt32) -> UInt32 {
        now &- lastAdmit
    }

    /// Notes an admission now.
    @inline(__always)
    mutating func noteAdmission() {
        lastAdmit = Self.lastAdmitMilliseconds(MonotonicTicks.now())
    }

    /// Whether no call was admitted for at least `idleNanoseconds`.
    func isIdle(forNanoseconds idleNanoseconds: Int64, now ticks: Int64 = MonotonicTicks.now()) -> Bool {
        let idle = Self.idleMilliseconds(since: lastAdmit, now: Self.lastAdmitMilliseconds(ticks))
        return Int64(idle) * 1_000_000 >= idleNanoseconds
    }

    // MARK: Rare state

    /// When an exhausted slot may ask again (`Timestamp.min` unless set).
    var recheckAt: Timestamp {
        get { rare?.recheckAt ?? .min }
        set { if rare != nil || newValue != .min { writableRare().recheckAt = newValue } }
    }

    /// When an unreachable slot may ask again (`Timestamp.min` unless set).
    var retryAt: Timestamp {
        get { rare?.retryAt ?? .min }
        set { if rare != nil || newValue != .min { writableRare().retryAt = newValue } }
    }

    /// Figures from the last grant: units bought on top of the limit.
    var credits: UInt64 {
        get { rare?.credits ?? 0 }
        set { if rare != nil || newValue != 0 { writableRare().credits = newValue } }
    }

    /// Optimistic mode (and uncapped overage): units admitted here since the figures arrived.
    var spentSinceFigures: UInt64 {
        get { rare?.spentSinceFigures ?? 0 }
        set { if rare != nil || newValue != 0 { writableRare().spentSinceFigures = newValue } }
    }

    /// When the figures arrived (`Timestamp.min` when not kept). Kept only by a slot that has rare
    /// state (an optimistic slot makes it on its first decision, see `keepFiguresTime()`): a
    /// strict slot never reads it, and setting it would give every key the rare state.
    var figuresAt: Timestamp {
        get { rare?.figuresAt ?? .min }
        set { if rare != nil { writableRare().figuresAt = newValue } }
    }

    /// Makes the slot keep `figuresAt` from now on (optimistic mode reads it).
    @inline(__always)
    mutating func keepFiguresTime() {
        if rare == nil { rare = QuotaSlotRare() }
    }

    /// The rare state, made if need be, and unshared (a slot copied and then changed must not
    /// change the copy).
    private mutating func writableRare() -> QuotaSlotRare {
        if rare == nil {
            rare = QuotaSlotRare()
        } else if !isKnownUniquelyReferenced(&rare!) {
            rare = rare!.copy()
        }
        return rare!
    }
}

/// What a slot holds that a steady strict key never needs: made the first time one of these is set
/// to other than its default, and kept (a slot that needed it once likely needs it again).
///
/// Threading: owned by one `QuotaSlot` (copied on write), only touched under the key cache's lock.
final class QuotaSlotRare {
    var recheckAt = Timestamp.min
    var retryAt = Timestamp.min
    var figuresAt = Timestamp.min
    var credits: UInt64 = 0
    var spentSinceFigures: UInt64 = 0

    init() {}

    func copy() -> QuotaSlotRare {
        let copy = QuotaSlotRare()
        copy.recheckAt = recheckAt
        copy.retryAt = retryAt
        copy.figuresAt = figuresAt
        copy.credits = credits
        copy.spentSinceFigures = spentSinceFigures
        return copy
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
    /// Slots of further metered features, the rate tier's bucket and the update version, when the
    /// key has them.
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

    /// Highest update version the gate applied to this key (0 before any). Kept in `extras`: most
    /// keys never get a pushed update, so the row does not spend 8 bytes on it.
    var version: UInt64 {
        get { extras?.version ?? 0 }
        set {
            if let extras {
                extras.version = newValue
            } else if newValue != 0 {
                let extras = KeyQuotaExtras()
                extras.version = newValue
                self.extras = extras
            }
        }
    }

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

/// What few keys need: more than one metered feature, a rate tier, a pushed update.
///
/// Threading: owned by one `CachedKey`, only touched under the key cache's lock.
final class KeyQuotaExtras {
    /// Slots of metered features other than the key's first, by feature index.
    var slots: [UInt32: QuotaSlot] = [:]
    /// The key's token bucket (this sidecar's share of the tier), made on first use.
    var bucket: TokenBucket?
    /// The tier the bucket was made for.
    var bucketTier: RateTier?
    /// Highest update version the gate applied to the key (`CachedKey.version`).
    var version: UInt64 = 0
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
