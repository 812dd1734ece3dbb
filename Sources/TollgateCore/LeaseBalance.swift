/// What is left of one held lease: unspent units and when the collector reclaims them.
///
/// The sidecar needs nothing else of a grant to admit against it (the key, feature and period are
/// those of the slot that holds it), so a held lease is two words.
public struct HeldLease: Sendable, Hashable {
    /// Units not yet spent.
    public var remaining: UInt64
    /// When the collector reclaims whatever is unused.
    public var expiresAt: Timestamp

    /// A lease of `units` expiring at `expiresAt`.
    public init(remaining: UInt64, expiresAt: Timestamp) {
        self.remaining = remaining
        self.expiresAt = expiresAt
    }

    /// Starts holding a fresh grant.
    public init(_ lease: Lease) {
        self.init(remaining: lease.units, expiresAt: lease.expiresAt)
    }
}

/// The result of admitting a request against held leases.
public struct LeaseAdmission: Sendable, Hashable {
    /// Whether the units were taken from the leases.
    public var admitted: Bool
    /// Units still available afterwards.
    public var available: UInt64

    /// Creates an admission result.
    public init(admitted: Bool, available: UInt64) {
        self.admitted = admitted
        self.available = available
    }
}

/// The sidecar's leases for one key, feature and period, in strict mode: it admits only what it holds.
///
/// A state machine the sidecar drives: `admit` spends, `add` takes a grant, `requestSent` /
/// `requestFinished` track the one lease request in flight, `expire` drops leases past their expiry
/// (less a safety margin against clock skew with the collector, which the caller passes in: it is
/// configuration, the same for every balance), `returnAll` hands back what is unused.
///
/// Compact on purpose (41 bytes, no heap in steady traffic): a sidecar caches one per key and metered
/// feature. Two leases live inline, which is what steady traffic holds (the one being spent and the
/// next, asked for at half); a third and later ones, rare, spill into an array.
public struct LeaseBalance: Sendable, Hashable {
    /// The two soonest-expiring leases; `remaining == 0` marks an empty place.
    @usableFromInline var first = HeldLease(remaining: 0, expiresAt: .min)
    @usableFromInline var second = HeldLease(remaining: 0, expiresAt: .min)
    /// Leases beyond the first two, soonest expiry first (all expire no sooner than `second`).
    @usableFromInline var more: [HeldLease] = []
    /// Whether a lease request is in flight (at most one at a time).
    public private(set) var requestPending = false

    /// Creates an empty balance.
    public init() {}

    /// The default expiry margin (1 s), in nanoseconds.
    public static let defaultExpiryMarginNanoseconds: Int64 = 1_000_000_000

    /// An expiry margin as the balance's methods take it: stop spending a lease this many
    /// nanoseconds before its expiry, so a sidecar whose clock lags the collector's never spends
    /// units the collector has already reclaimed. Kept to the millisecond (rounded down), from 0 to
    /// `UInt32.max` milliseconds (about 49 days; longer margins saturate there).
    public static func expiryMarginNanoseconds(_ margin: Duration) -> Int64 {
        let milliseconds = Swift.max(0, margin.saturatingNanoseconds) / Timestamp.nanosecondsPerMillisecond
        return Int64(UInt32(clamping: milliseconds)) * Timestamp.nanosecondsPerMillisecond
    }

    /// Held leases with units left, soonest expiry first.
    public var leases: [HeldLease] {
        var all: [HeldLease] = []
        if first.remaining > 0 { all.append(first) }
        if second.remaining > 0 { all.append(second) }
        return all + more
    }

    /// Whether no lease is held.
    public var isEmpty: Bool { first.remaining == 0 && second.remaining == 0 && more.isEmpty }

    /// Units spendable at `now` (leases within their usable life).
    @inlinable @inline(__always)
    public func available(at now: Timestamp, expiryMarginNanoseconds: Int64 = defaultExpiryMarginNanoseconds) -> UInt64 {
        let cutoff = now.advanced(byNanoseconds: expiryMarginNanoseconds)
        var sum: UInt64 = 0
        if first.remaining > 0, cutoff < first.expiresAt { sum = first.remaining }
        if second.remaining > 0, cutoff < second.expiresAt { sum = Self.saturatingAdd(sum, second.remaining) }
        if !more.isEmpty {
            for held in more where cutoff < held.expiresAt { sum = Self.saturatingAdd(sum, held.remaining) }
        }
        return sum
    }

    /// Whether to ask for another lease: at most `lowWatermark` units left and no request already in flight.
    public func shouldRequestMore(
        at now: Timestamp, lowWatermark: UInt64, expiryMarginNanoseconds: Int64 = defaultExpiryMarginNanoseconds
    ) -> Bool {
        !requestPending && available(at: now, expiryMarginNanoseconds: expiryMarginNanoseconds) <= lowWatermark
    }

    /// Spends `units` from the leases (soonest expiry first), all or nothing.
    @inlinable
    public mutating func admit(
        units: UInt64, at now: Timestamp, expiryMarginNanoseconds: Int64 = defaultExpiryMarginNanoseconds
    ) -> LeaseAdmission {
        let cutoff = now.advanced(byNanoseconds: expiryMarginNanoseconds)
        // The common case: the soonest lease alone covers the call and nothing later is needed.
        if more.isEmpty, first.remaining >= units, units > 0, cutoff < first.expiresAt {
            first.remaining -= units
            var available = first.remaining
            if second.remaining > 0, cutoff < second.expiresAt { available = Self.saturatingAdd(available, second.remaining) }
            if first.remaining == 0 { shiftDown() }
            return LeaseAdmission(admitted: true, available: available)
        }
        let before = available(at: now, expiryMarginNanoseconds: expiryMarginNanoseconds)
        guard units <= before else { return LeaseAdmission(admitted: false, available: before) }
        var left = units
        func take(_ held: inout HeldLease) {
            guard left > 0, held.remaining > 0, cutoff < held.expiresAt else { return }
            let taken = Swift.min(left, held.remaining)
            held.remaining -= taken
            left -= taken
        }
        take(&first)
        take(&second)
        if !more.isEmpty {
            for index in more.indices where left > 0 { take(&more[index]) }
        }
        compact()
        return LeaseAdmission(admitted: true, available: before - units)
    }

    /// Takes a granted lease of `units` expiring at `expiresAt`, and ends the pending request.
    public mutating func add(units: UInt64, expiresAt: Timestamp) {
        requestPending = false
        guard units > 0 else { return }
        var all = leases
        let index = all.firstIndex { $0.expiresAt > expiresAt } ?? all.endIndex
        all.insert(HeldLease(remaining: units, expiresAt: expiresAt), at: index)
        store(all)
    }

    /// Takes a granted lease and ends the pending request.
    public mutating func add(_ lease: Lease) {
        add(units: lease.units, expiresAt: lease.expiresAt)
    }

    /// Notes that a lease request was sent.
    public mutating func requestSent() { requestPending = true }

    /// Notes that the pending request ended without a grant (refused or timed out).
    public mutating func requestFinished() { requestPending = false }

    /// Drops leases no longer usable at `now` and returns their unused units (the collector reclaims them).
    public mutating func expire(at now: Timestamp, expiryMarginNanoseconds: Int64 = defaultExpiryMarginNanoseconds) -> UInt64 {
        let cutoff = now.advanced(byNanoseconds: expiryMarginNanoseconds)
        var unused: UInt64 = 0
        var kept: [HeldLease] = []
        for held in leases {
            if cutoff < held.expiresAt { kept.append(held) } else { unused = Self.saturatingAdd(unused, held.remaining) }
        }
        if unused > 0 { store(kept) }
        return unused
    }

    /// Hands back every lease (shutdown, period end, plan change) and returns the unused units.
    public mutating func returnAll() -> UInt64 {
        let unused = leases.reduce(UInt64(0)) { Self.saturatingAdd($0, $1.remaining) }
        store([])
        return unused
    }

    /// Moves `second` (and the first of `more`) down after `first` emptied.
    @usableFromInline
    mutating func shiftDown() {
        first = second
        second = more.isEmpty ? HeldLease(remaining: 0, expiresAt: .min) : more.removeFirst()
        if first.remaining == 0, second.remaining > 0 { shiftDown() }
    }

    /// Drops emptied leases, keeping the order.
    @usableFromInline
    mutating func compact() {
        if first.remaining == 0 || second.remaining == 0 || more.contains(where: { $0.remaining == 0 }) {
            store(leases)
        }
    }

    private mutating func store(_ all: [HeldLease]) {
        let held = all.filter { $0.remaining > 0 }
        first = held.count > 0 ? held[0] : HeldLease(remaining: 0, expiresAt: .min)
        second = held.count > 1 ? held[1] : HeldLease(remaining: 0, expiresAt: .min)
        more = held.count > 2 ? Array(held[2...]) : []
    }

    @usableFromInline
    static func saturatingAdd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }
}
