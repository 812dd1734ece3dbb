/// A lease as the sidecar holds it: the grant and what is left of it.
public struct HeldLease: Sendable, Hashable, Codable {
    /// The grant.
    public var lease: Lease
    /// Units not yet spent.
    public var remaining: UInt64

    /// Starts holding a fresh lease.
    public init(_ lease: Lease) {
        self.lease = lease
        self.remaining = lease.units
    }

    /// Units spent so far.
    public var spent: UInt64 { lease.units - remaining }
}

/// Unused units of a lease handed back (or written off at expiry).
public struct LeaseReturn: Sendable, Hashable, Codable {
    /// The lease's id.
    public var leaseID: UInt64
    /// Units that were not spent.
    public var unused: UInt64

    /// Creates a return record.
    public init(leaseID: UInt64, unused: UInt64) {
        self.leaseID = leaseID
        self.unused = unused
    }
}

/// The result of admitting a request against held leases.
public struct LeaseAdmission: Sendable, Hashable {
    /// Whether the units were taken from the leases.
    public var admitted: Bool
    /// Units still available afterwards.
    public var available: UInt64
    /// Whether the sidecar should ask the collector for another lease now.
    public var shouldRequestMore: Bool

    /// Creates an admission result.
    public init(admitted: Bool, available: UInt64, shouldRequestMore: Bool) {
        self.admitted = admitted
        self.available = available
        self.shouldRequestMore = shouldRequestMore
    }
}

/// The sidecar's leases for one key, feature and period, in strict mode: it admits only what it holds.
///
/// A state machine the sidecar drives: `admit` spends, `add` takes a grant, `requestSent` /
/// `requestFinished` track the one lease request in flight, `expire` drops leases past their expiry
/// (less a safety margin against clock skew with the collector), `returnAll` hands back what is unused.
public struct LeaseBalance: Sendable, Hashable, Codable {
    /// Held leases, soonest expiry first, so units that would go stale are spent first.
    public private(set) var leases: [HeldLease]
    /// Ask for more when available units fall to this many or fewer.
    public var lowWatermark: UInt64
    /// Stop spending a lease this many nanoseconds before its expiry, so a sidecar whose clock lags the
    /// collector's never spends units the collector has already reclaimed.
    public var expiryMarginNanoseconds: Int64
    /// Whether a lease request is in flight (at most one at a time).
    public private(set) var requestPending: Bool

    /// Creates an empty balance.
    public init(lowWatermark: UInt64, expiryMargin: Duration = .seconds(1)) {
        self.leases = []
        self.lowWatermark = lowWatermark
        self.expiryMarginNanoseconds = Swift.max(0, expiryMargin.saturatingNanoseconds)
        self.requestPending = false
    }

    /// Units spendable at `now` (leases within their usable life).
    public func available(at now: Timestamp) -> UInt64 {
        leases.reduce(0) { sum, held in
            guard isUsable(held, at: now) else { return sum }
            let (s, o) = sum.addingReportingOverflow(held.remaining)
            return o ? .max : s
        }
    }

    /// Whether to ask for another lease: few units left and no request already in flight.
    public func shouldRequestMore(at now: Timestamp) -> Bool {
        !requestPending && available(at: now) <= lowWatermark
    }

    /// Spends `units` from the leases (soonest expiry first), all or nothing.
    public mutating func admit(units: UInt64, at now: Timestamp) -> LeaseAdmission {
        let before = available(at: now)
        guard units <= before else {
            return LeaseAdmission(admitted: false, available: before, shouldRequestMore: shouldRequestMore(at: now))
        }
        var left = units
        for index in leases.indices where left > 0 && isUsable(leases[index], at: now) {
            let take = Swift.min(left, leases[index].remaining)
            leases[index].remaining -= take
            left -= take
        }
        leases.removeAll { $0.remaining == 0 }
        return LeaseAdmission(admitted: true, available: before - units, shouldRequestMore: shouldRequestMore(at: now))
    }

    /// Takes a granted lease and ends the pending request.
    public mutating func add(_ lease: Lease) {
        requestPending = false
        guard lease.units > 0 else { return }
        let index = leases.firstIndex { $0.lease.expiresAt > lease.expiresAt } ?? leases.endIndex
        leases.insert(HeldLease(lease), at: index)
    }

    /// Notes that a lease request was sent.
    public mutating func requestSent() { requestPending = true }

    /// Notes that the pending request ended without a grant (refused or timed out).
    public mutating func requestFinished() { requestPending = false }

    /// Drops leases no longer usable at `now` and reports their unused units (the collector reclaims them).
    public mutating func expire(at now: Timestamp) -> [LeaseReturn] {
        let margin = expiryMarginNanoseconds
        let expired = leases.filter { !Self.isUsable($0, at: now, margin: margin) }
        leases.removeAll { !Self.isUsable($0, at: now, margin: margin) }
        return expired.map { LeaseReturn(leaseID: $0.lease.id, unused: $0.remaining) }
    }

    /// Hands back every lease (shutdown, period end, plan change) and reports the unused units.
    public mutating func returnAll() -> [LeaseReturn] {
        defer { leases.removeAll() }
        return leases.map { LeaseReturn(leaseID: $0.lease.id, unused: $0.remaining) }
    }

    private func isUsable(_ held: HeldLease, at now: Timestamp) -> Bool {
        Self.isUsable(held, at: now, margin: expiryMarginNanoseconds)
    }

    private static func isUsable(_ held: HeldLease, at now: Timestamp, margin: Int64) -> Bool {
        now < held.lease.expiresAt.advanced(byNanoseconds: -margin)
    }
}
