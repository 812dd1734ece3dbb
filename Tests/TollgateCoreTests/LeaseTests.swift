import TollgateTestSupport
import Testing
import TollgateCore

@Suite struct LeaseTests {
    let period = ResetInterval.day.period(containing: utc(2026, 11, 23, 12))
    let now = utc(2026, 11, 23, 12)

    func lease(_ id: UInt64, _ units: UInt64, expires: Timestamp) -> Lease {
        Lease(id: id, holder: "sidecar-a", key: "k1", feature: .apiCall, periodID: period.id, units: units, expiresAt: expires)
    }

    @Test func grantSizeBounds() {
        let a = LeaseAllocator(minSlice: 10, maxSlice: 100, shareDivisor: 2)
        #expect(a.grantSize(requested: 5, unleased: 10_000, activeHolders: 2) == 10)      // raised to minSlice
        #expect(a.grantSize(requested: 500, unleased: 10_000, activeHolders: 2) == 100)   // capped at maxSlice
        #expect(a.grantSize(requested: 50, unleased: 100, activeHolders: 2) == 25)        // 100 / (2·2)
        #expect(a.grantSize(requested: 50, unleased: 3, activeHolders: 4) == 1)           // at least 1 while any remains
        #expect(a.grantSize(requested: 50, unleased: 0, activeHolders: 1) == 0)
        #expect(a.grantSize(requested: 0, unleased: 100, activeHolders: 1) == 0)
        #expect(a.grantSize(requested: 50, unleased: 1, activeHolders: 0) == 1)
        #expect(QuotaAvailability(limit: 100, credits: 20, used: 70, outstanding: 30).unleased == 20)
        #expect(QuotaAvailability(limit: 100, used: 90, outstanding: 30).unleased == 0)
    }

    @Test func grantsExpireWithTheTtlOrThePeriod() {
        let a = LeaseAllocator(ttl: .seconds(30))
        let avail = QuotaAvailability(limit: 100)
        let l = a.grant(id: 1, holder: "s", key: "k", feature: .apiCall, period: period, requested: 10, availability: avail, activeHolders: 1, at: now)
        #expect(l == Lease(id: 1, holder: "s", key: "k", feature: .apiCall, periodID: "d20261123", units: 10, expiresAt: now + .seconds(30)))
        let late = utc(2026, 11, 23, 23, 59, 50)
        #expect(a.grant(id: 2, holder: "s", key: "k", feature: .apiCall, period: period, requested: 10, availability: avail, activeHolders: 1, at: late)?.expiresAt == period.end)
        #expect(a.grant(id: 3, holder: "s", key: "k", feature: .apiCall, period: period, requested: 10,
                        availability: QuotaAvailability(limit: 10, used: 10), activeHolders: 1, at: now) == nil)
    }

    @Test func grantsShrinkAsTheQuotaRunsOut() {
        let a = LeaseAllocator(minSlice: 1, maxSlice: 1000, shareDivisor: 2)
        var avail = QuotaAvailability(limit: 1000)
        var grants: [UInt64] = []
        while avail.unleased > 0 {
            let g = a.grantSize(requested: 1000, unleased: avail.unleased, activeHolders: 3)
            grants.append(g)
            avail.outstanding += g
        }
        #expect(grants.prefix(5) == [166, 139, 115, 96, 80])
        #expect(zip(grants, grants.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(grants.suffix(6) == [1, 1, 1, 1, 1, 1])
        #expect(grants.reduce(0, +) == 1000)
    }

    @Test func sumOfGrantsNeverExceedsTheRemainingQuota() {
        var rng = SplitMix64(seed: 0x7011_6a7e)
        for _ in 0..<300 {
            let a = LeaseAllocator(minSlice: UInt64.random(in: 1...50, using: &rng), maxSlice: UInt64.random(in: 1...500, using: &rng),
                                   shareDivisor: UInt64.random(in: 1...4, using: &rng))
            let limit = UInt64.random(in: 0...5000, using: &rng)
            var avail = QuotaAvailability(limit: limit, credits: UInt64.random(in: 0...100, using: &rng))
            let quota = avail.limit + avail.credits
            var granted: UInt64 = 0
            for _ in 0..<200 {
                switch UInt64.random(in: 0..<10, using: &rng) {
                case 0:                                                  // a lease's units get used
                    let used = UInt64.random(in: 0...avail.outstanding, using: &rng)
                    avail.outstanding -= used
                    avail.used += used
                case 1:                                                  // a lease expires or is returned
                    avail.outstanding -= UInt64.random(in: 0...avail.outstanding, using: &rng)
                default:
                    let before = avail.unleased
                    let g = a.grantSize(requested: UInt64.random(in: 0...1000, using: &rng), unleased: before,
                                        activeHolders: Int.random(in: 0...8, using: &rng))
                    #expect(g <= before)
                    avail.outstanding += g
                    granted += g
                }
                #expect(avail.used + avail.outstanding <= quota)
            }
            _ = granted
        }
    }

    @Test func balanceAdmitsOnlyWhatItHolds() {
        var b = LeaseBalance()
        #expect(b.shouldRequestMore(at: now, lowWatermark: 3))
        b.requestSent()
        #expect(!b.shouldRequestMore(at: now, lowWatermark: 3))         // one request in flight
        b.add(lease(1, 5, expires: now + .seconds(30)))
        b.add(lease(2, 4, expires: now + .seconds(10)))
        #expect(!b.requestPending)
        #expect(b.available(at: now) == 9)
        #expect(b.leases.map(\.expiresAt) == [now + .seconds(10), now + .seconds(30)])  // soonest expiry spent first
        let first = b.admit(units: 6, at: now)
        #expect(first == LeaseAdmission(admitted: true, available: 3))
        #expect(b.shouldRequestMore(at: now, lowWatermark: 3))
        #expect(b.leases == [HeldLease(remaining: 3, expiresAt: now + .seconds(30))])
        #expect(b.admit(units: 4, at: now) == LeaseAdmission(admitted: false, available: 3))
        #expect(b.admit(units: 1, at: now) == LeaseAdmission(admitted: true, available: 2))  // the single-lease fast path
        #expect(b.returnAll() == 2)
        #expect(b.available(at: now) == 0)
        #expect(b.isEmpty)
    }

    @Test func balanceStopsSpendingBeforeExpiry() {
        var b = LeaseBalance()
        b.add(lease(1, 5, expires: now + .seconds(10)))
        b.add(lease(2, 7, expires: now + .seconds(20)))
        let t = now + .seconds(9)                                        // within the 1 s margin of lease 1
        #expect(b.available(at: t) == 7)
        #expect(b.admit(units: 8, at: t).admitted == false)
        #expect(b.expire(at: t) == 5)
        #expect(b.admit(units: 7, at: t).admitted)
        #expect(b.leases.isEmpty)
    }

    @Test func balanceHoldsMoreThanTwoLeasesInExpiryOrder() {
        var b = LeaseBalance()
        for (units, seconds) in [(UInt64(4), Int64(40)), (3, 10), (2, 30), (1, 20)] {
            b.add(lease(units, units, expires: now + .seconds(seconds)))
        }
        #expect(b.leases.map(\.remaining) == [3, 1, 2, 4])              // by expiry, whatever the arrival order
        #expect(b.available(at: now) == 10)
        #expect(b.admit(units: 5, at: now) == LeaseAdmission(admitted: true, available: 5))  // spans three leases
        #expect(b.leases == [HeldLease(remaining: 1, expiresAt: now + .seconds(30)), HeldLease(remaining: 4, expiresAt: now + .seconds(40))])
        #expect(b.expire(at: now + .seconds(35)) == 1)
        #expect(b.available(at: now + .seconds(35)) == 4)
        #expect(b.returnAll() == 4)
        #expect(b.isEmpty)
    }
}
