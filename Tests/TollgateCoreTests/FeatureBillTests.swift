import Testing
import TollgateCore
import TollgateTestSupport

/// The bill arithmetic: integer money only, one rounding per period, caps kept, overflow reported.
@Suite struct FeatureBillTests {
    func overage(_ atomic: UInt64, per: UInt64 = 1, cap: UInt64? = nil) -> OverQuotaPolicy {
        .overage(price: UnitPrice(price: Money(atomicUnits: atomic), perUnits: per), spendCap: cap.map { Money(atomicUnits: $0) }, fallback: .block)
    }

    @Test func overageIsTheUnitsBeyondIncludedAtThePlansPrice() {
        // 5,000 calls on 1,000 at 0.001 USDC: 4,000 units, 4,000,000 atomic units (the system test's figure).
        let bill = FeatureBill(limit: 1_000, credits: 0, used: 5_000, policy: overage(1_000))
        #expect((bill.included, bill.remaining, bill.overageUnits, bill.charge) == (1_000, 0, 4_000, 4_000_000))
        #expect(bill.unitPrice == UnitPrice(price: Money(atomicUnits: 1_000)) && bill.spendCap == nil)
        #expect(!bill.capReached && !bill.overflow)
        #expect(bill.percentUsed == 500 && bill.level == .alert)
    }

    @Test func theChargeIsRoundedUpOnceOnTheCumulativeCount() {
        // 1,500 atomic units per 1,000 units: 1.5 per unit. Three units cost ceil(4.5) = 5, not 2 + 2 + 2.
        let policy = overage(1_500, per: 1_000)
        #expect(FeatureBill(limit: 10, credits: 0, used: 11, policy: policy).charge == 2)
        #expect(FeatureBill(limit: 10, credits: 0, used: 13, policy: policy).charge == 5)
        #expect(FeatureBill(limit: 10, credits: 0, used: 2_010, policy: policy).charge == 3_000)
    }

    @Test func theBillEqualsWhatTheSidecarsChargedCallByCall() {
        // Whatever the split of overage units across calls, the per-call charges telescope to the bill.
        let price = UnitPrice(price: Money(atomicUnits: 7), perUnits: 3)
        var generator = SplitMix64(seed: 42)
        for _ in 0..<200 {
            var charged: UInt64 = 0
            var overage: UInt64 = 0
            for _ in 0..<Int(generator.next() % 20) {
                let units = generator.next() % 50
                charged += price.charge(units: units, after: overage)!.atomicUnits
                overage += units
            }
            let bill = FeatureBill(limit: 100, credits: 0, used: 100 + overage, policy: .overage(price: price, spendCap: nil, fallback: .block))
            #expect(bill.charge == charged, "overage \(overage)")
        }
    }

    @Test func creditsRaiseTheIncludedUnits() {
        let bill = FeatureBill(limit: 1_000, credits: 200, used: 1_300, policy: overage(10))
        #expect((bill.included, bill.overageUnits, bill.charge) == (1_200, 100, 1_000))
        let under = FeatureBill(limit: 1_000, credits: 200, used: 1_100, policy: overage(10))
        #expect((under.remaining, under.overageUnits, under.charge, under.percentUsed) == (100, 0, 0, 91))
    }

    @Test func onlyTheOveragePolicyBills() {
        // Optimistic overshoot under block, or calls paid one by one: over the limit, never billed here.
        for policy in [OverQuotaPolicy.block, .paymentRequired(price: Money(atomicUnits: 10_000), buys: .singleCall)] {
            let bill = FeatureBill(limit: 1_000, credits: 0, used: 1_300, policy: policy, payments: 3, paymentsAmount: 30_000)
            #expect((bill.overageUnits, bill.charge, bill.remaining, bill.percentUsed) == (0, 0, 0, 130))
            #expect(bill.unitPrice == nil && bill.spendCap == nil && !bill.capReached)
            #expect((bill.payments, bill.paymentsAmount) == (3, 30_000))
        }
    }

    @Test func theSpendCapIsNeverPassedAndSaysWhenTheNextUnitWouldPassIt() {
        // 0.5 USDC at 0.002 per unit pays for exactly 250 overage units.
        let policy = overage(2_000, cap: 500_000)
        let before = FeatureBill(limit: 1_000, credits: 0, used: 1_249, policy: policy)
        #expect((before.overageUnits, before.charge, before.capReached) == (249, 498_000, false))
        let at = FeatureBill(limit: 1_000, credits: 0, used: 1_250, policy: policy)
        #expect((at.overageUnits, at.charge, at.capReached, at.spendCap) == (250, 500_000, true, 500_000))
        // An overshoot past the cap (optimistic mode) is counted, but never charged beyond the cap.
        let past = FeatureBill(limit: 1_000, credits: 0, used: 1_400, policy: policy)
        #expect((past.overageUnits, past.charge, past.capReached) == (400, 500_000, true))
        // A cap that is not a multiple of the price: 1.5 per unit, cap 10. Six units cost 9; a seventh would cost 11.
        let uneven = FeatureBill(limit: 0, credits: 0, used: 6, policy: overage(3, per: 2, cap: 10))
        #expect((uneven.charge, uneven.capReached) == (9, true))
        let room = FeatureBill(limit: 0, credits: 0, used: 5, policy: overage(3, per: 2, cap: 10))
        #expect((room.charge, room.capReached) == (8, false))
    }

    @Test func zeroes() {
        let nothing = FeatureBill(limit: 1_000, credits: 0, used: 0, policy: overage(1_000, cap: 0))
        #expect((nothing.charge, nothing.overageUnits, nothing.percentUsed, nothing.level) == (0, 0, 0, .ok))
        // A cap of zero: not a single overage unit may be charged.
        #expect(nothing.capReached)
        let free = FeatureBill(limit: 10, credits: 0, used: 50, policy: overage(0))
        #expect((free.overageUnits, free.charge, free.capReached) == (40, 0, false))
        // Nothing included: at 100 % while unused, at the largest percent once used.
        #expect(FeatureBill(limit: 0, credits: 0, used: 0, policy: .block).percentUsed == 100)
        #expect(FeatureBill(limit: 0, credits: 0, used: 1, policy: .block).percentUsed == FeatureBill.maxPercent)
    }

    @Test func hugeValuesSaturateAndSaySo() {
        let max = UInt64.max
        // limit + credits past UInt64.max: unlimited in practice, not an error.
        let wide = FeatureBill(limit: max, credits: 5, used: max, policy: overage(1))
        #expect((wide.included, wide.overageUnits, wide.charge, wide.overflow) == (max, 0, 0, false))
        // The largest charge that fits is exact.
        let exact = FeatureBill(limit: 0, credits: 0, used: max, policy: overage(1))
        #expect((exact.charge, exact.overflow) == (max, false))
        // One that does not fit saturates and sets overflow, with or without a cap (the cap still holds).
        let over = FeatureBill(limit: 0, credits: 0, used: max, policy: overage(2))
        #expect((over.charge, over.overflow) == (max, true))
        let capped = FeatureBill(limit: 0, credits: 0, used: max, policy: overage(2, cap: 1_000))
        #expect((capped.charge, capped.overflow, capped.capReached) == (1_000, true, true))
        // A price per many units keeps huge counts exact: 2^64 − 1 units at 3 per 4 is ceil(3 × (2^64 − 1) / 4).
        let fine = FeatureBill(limit: 0, credits: 0, used: max, policy: overage(3, per: 4))
        #expect((fine.charge, fine.overflow) == (13_835_058_055_282_163_712, false))
        #expect(FeatureBill(limit: 1, credits: 0, used: max, policy: .block).percentUsed == FeatureBill.maxPercent)
    }

    @Test func percentIsRoundedDownAndLevelsAreAt80And100() {
        func percent(_ used: UInt64, _ included: UInt64) -> UInt64 {
            FeatureBill(limit: included, credits: 0, used: used, policy: .block).percentUsed
        }
        #expect((percent(799, 1_000), percent(800, 1_000), percent(999, 1_000), percent(1_000, 1_000)) == (79, 80, 99, 100))
        #expect((UsageLevel(percentUsed: 79), UsageLevel(percentUsed: 80), UsageLevel(percentUsed: 100)) == (.ok, .warning, .alert))
        #expect(UsageLevel.ok < .warning && UsageLevel.warning < .alert)
        #expect(percent(UInt64.max / 2, UInt64.max) == 49)
    }

    @Test func totalsAddLinesAndKeepPaymentsApart() {
        var totals = BillTotals()
        totals.add(FeatureBill(limit: 1_000, credits: 0, used: 5_000, policy: overage(1_000)))
        totals.add(FeatureBill(limit: 5, credits: 6, used: 11, policy: .paymentRequired(price: Money(atomicUnits: 10_000), buys: .units(3)),
                               payments: 2, paymentsAmount: 20_000))
        #expect((totals.overageUnits, totals.overageCharge, totals.payments, totals.paymentsAmount, totals.overflow) == (4_000, 4_000_000, 2, 20_000, false))
        // A sum past UInt64.max saturates and is flagged, never wrapped.
        totals.add(FeatureBill(limit: 0, credits: 0, used: UInt64.max, policy: overage(1)))
        #expect((totals.overageCharge, totals.overflow) == (UInt64.max, true))
    }
}
