import TollgateCore

/// The quota gate's state and its decision, as a state machine: `decide` mutates and returns what
/// to answer plus the lease requests to send, which `QuotaGate` carries out outside its lock. It
/// also holds the rows of the key directory's answers (one table for both, see `KeyCache`).
///
/// Threading: a value owned by `KeyCache` (never copied), only touched under its lock.
struct GateState {
    /// Where a waiting call is parked: a key and a feature (an index into `featureNames`).
    struct SlotKey: Hashable {
        var id: CompactKeyID
        var feature: UInt32
    }

    /// The gate's configuration (the one `QuotaGate` that uses the table sets it).
    var configuration: QuotaGate.Configuration
    /// Every cached key: the directory's answer and the gate's state share one row (see `CachedKey`).
    var keys = KeyTable<CachedKey>()
    /// Rows the gate holds state for.
    private(set) var gateKeys = 0
    /// The periods slots are in, each kept once (a reference, so deciding can read it while a
    /// slot is borrowed; the state is never copied).
    let periods = PeriodTable()
    /// Plan and feature names seen, so each key stores a 4-byte index rather than a name.
    private(set) var planNames: [String] = []
    private var planIndex: [String: UInt32] = [:]
    private(set) var featureNames: [FeatureName] = []
    var featureIndex: [FeatureName: UInt32] = [:]
    /// Calls waiting for a lease or figures, first come first served. Few at any time, so they
    /// live here rather than in every slot.
    private(set) var waiters: [SlotKey: [QuotaWaiter]] = [:]
    var counts = DecisionCounts()
    /// Counts the times a key's state was dropped (a pushed plan change, revocation, resync). A
    /// grant asked for before the latest drop may be cut from figures that change voided.
    var dropEpoch: UInt64 = 0
    /// Features a plan change said were left with nothing (`QuotaUpdate.exhausted`), by key and
    /// feature, with their period: the key's next slot there starts exhausted and refuses without
    /// a lease round trip (see `startsExhausted`). Cleared by the key's next change or a credit.
    var pushedExhaustion: [PushedExhaustion: String] = [:]

    init(configuration: QuotaGate.Configuration = QuotaGate.Configuration()) {
        self.configuration = configuration
    }

    // MARK: Deciding

    /// Decides `request` (its key id compacted and its feature found when it was made): the
    /// verdict, or nil when the call must wait for the collector.
    mutating func decide(_ request: GateRequest, at now: Timestamp, asks: inout [LeaseAsk]) -> GateVerdict? {
        let verdict = decideUncounted(request, at: now, asks: &asks)
        if let verdict { counts.count(verdict) }
        return verdict
    }

    /// `decide`, also taking the decision counts when a batch is due (one access to the state
    /// for both, on the hot path).
    mutating func decide(
        _ request: GateRequest, at now: Timestamp, asks: inout [LeaseAsk], due: inout DecisionCounts?
    ) -> GateVerdict? {
        let verdict = decide(request, at: now, asks: &asks)
        due = counts.takeIfDue()
        return verdict
    }

    /// Makes sure the slot for the request exists (as a decision that must wait would), without
    /// counting a decision: the asks it raises tell the caller which lease the slot is waiting for.
    /// A slot that already exists is left alone (deciding on it could spend a unit nobody uses).
    mutating func prepare(_ request: GateRequest, at now: Timestamp, asks: inout [LeaseAsk]) -> Bool {
        if withSlot(request.id, request.feature, { _, _ in true }) == true { return false }
        return decideUncounted(request, at: now, asks: &asks) == nil
    }

    private mutating func decideUncounted(_ request: GateRequest, at now: Timestamp, asks: inout [LeaseAsk]) -> GateVerdict? {
        guard request.rule >= 0 else {
            return .refuse(GateRefusal(reason: .forbidden, feature: request.feature))
        }
        let plan = request.plan
        let position = join(request.id, plan: plan)
        let rate: RateCheck = plan.hasRateTier ? rateCheck(position, plan: plan, units: request.units, at: now) : noRate(position)
        switch plan.rules[Int(request.rule)] {
        case .boolean(let enabled):
            guard enabled else { return .refuse(GateRefusal(reason: .forbidden, feature: request.feature)) }
            if case .refused(let refusal) = rate { return .refuse(refusal) }
            consumeRate(position, units: request.units, at: now)
            return .admit(GateAdmission(leasedUnits: 0, limits: GateLimits(rate: rate.item)))
        case .metered(let rule):
            if case .refused(var refusal) = rate {
                // The tier refused: the answer carries the quota's figures too.
                let margin = configuration.leaseExpiryMarginNanoseconds
                return withSlot(at: position, request.feature, creating: plan, rule, at: now) { slot, bounds in
                    let remaining = Self.remainingIncluded(rule, slot, at: now, margin: margin)
                    refusal.limits.quota = Self.quotaItem(rule, slot, bounds, at: now, remaining: remaining)
                    return .refuse(refusal)
                }
            }
            // Only plain values go into the closure, so nothing is retained or copied per call.
            let rateItem = rate.item
            let configuration = self.configuration
            let periods = self.periods
            let verdict: GateVerdict? = withSlot(at: position, request.feature, creating: plan, rule, at: now) { slot, bounds in
                let context = SlotContext(bounds: bounds, periods: periods, configuration: configuration)
                return Self.decideMetered(request, rule, &slot, context, rate: rateItem, at: now, asks: &asks)
            }
            if rateItem != nil, verdict?.isAdmitted == true { consumeRate(position, units: request.units, at: now) }
            return verdict
        }
    }

    /// The row of key `id` in the gate, made (or taken over from the directory) if need be, with
    /// the plan it was last seen on.
    @inline(__always)
    private mutating func join(_ id: CompactKeyID, plan: GatePlan) -> Int {
        guard let position = keys.position(of: id) else {
            gateKeys += 1
            return keys.insert(CachedKey(plan: index(ofPlan: plan.planName)), for: id)
        }
        let current = keys[position].plan
        if current == CachedKey.noPlan {
            gateKeys += 1
            keys[position].plan = index(ofPlan: plan.planName)
        } else if planNames[Int(current)] != plan.planName {
            keys[position].plan = index(ofPlan: plan.planName)
        }
        return position
    }

    /// The position of key `id` if the gate holds state for it (the directory may have the row alone).
    func position(of id: CompactKeyID) -> Int? {
        guard let position = keys.position(of: id), keys[position].inGate else { return nil }
        return position
    }

    /// The key directory's answer for key `id`.
    func lookup(_ id: CompactKeyID) -> StoredEntry? {
        guard let position = keys.position(of: id) else { return nil }
        return keys[position].lookup
    }

    /// Sets (with nil: clears) the key directory's answer for key `id`; returns the one replaced.
    /// A row left with neither an answer nor gate state is removed.
    @discardableResult
    mutating func setLookup(_ lookup: StoredEntry?, for id: CompactKeyID) -> StoredEntry? {
        guard let position = keys.position(of: id) else {
            if let lookup { _ = keys.insert(CachedKey(lookup: lookup), for: id) }
            return nil
        }
        let old = keys[position].lookup
        if lookup == nil, !keys[position].inGate {
            keys.remove(id)
        } else {
            keys[position].lookup = lookup
        }
        return old
    }

    /// Forgets the gate's state for key `id`; the row stays while the directory has an answer in it.
    mutating func leave(_ id: CompactKeyID) {
        guard let position = position(of: id) else { return }
        gateKeys -= 1
        if keys[position].lookup == nil {
            keys.remove(id)
        } else {
            keys[position].leaveGate()
        }
    }

    private static func decideMetered(
        _ request: GateRequest, _ rule: MeteredRule, _ slot: inout QuotaSlot,
        _ context: SlotContext, rate: GateLimits.Item?, at now: Timestamp, asks: inout [LeaseAsk]
    ) -> GateVerdict? {
        let configuration = context.configuration
        let bounds = context.bounds
        guard rule.budget != nil else {
            // Overage without a cap: every call is served; the collector bills what exceeds the limit.
            slot.spentSinceFigures = saturatingAdd(slot.spentSinceFigures, request.units)
            let remaining = remainingIncluded(rule, slot, at: now, margin: configuration.leaseExpiryMarginNanoseconds)
            return .admit(GateAdmission(leasedUnits: 0, limits: GateLimits(quota: quotaItem(rule, slot, bounds, at: now, remaining: remaining), rate: rate), remaining: remaining))
        }
        switch rule.mode {
        case .optimistic:
            return decideOptimistic(request, rule, &slot, context, rate: rate, at: now, asks: &asks)
        case .strict:
            let admission = slot.balance.admit(
                units: request.units, at: now, expiryMarginNanoseconds: configuration.leaseExpiryMarginNanoseconds
            )
            if admission.admitted {
                slot.noteAdmission()
                let low = slot.nextRequest / max(1, configuration.refillDivisor)
                if admission.available <= low, !slot.balance.requestPending, !slot.exhausted || now >= slot.recheckAt,
                   !slot.unreachable || now >= slot.retryAt {
                    ask(request, &slot, context.periods, units: slot.nextRequest, asks: &asks)
                }
                let remaining = remainingIncluded(
                    rule, slot, at: now, margin: configuration.leaseExpiryMarginNanoseconds, available: admission.available
                )
                return .admit(GateAdmission(
                    leasedUnits: request.units, limits: GateLimits(quota: quotaItem(rule, slot, bounds, at: now, remaining: remaining), rate: rate),
                    remaining: remaining
                ))
            }
            if slot.exhausted {
                if now >= slot.recheckAt, !slot.balance.requestPending {
                    slot.recheckAt = now.advanced(byNanoseconds: configuration.exhaustedRecheck.saturatingNanoseconds)
                    ask(request, &slot, context.periods, units: slot.nextRequest, asks: &asks)
                }
                return quotaRefusal(request.plan.metered[Int(rule.index)], rule, slot, bounds, at: now)
            }
            if slot.unreachable, now < slot.retryAt {
                return unreachableVerdict(request, rule, slot, context, rate: rate, at: now)
            }
            if !slot.balance.requestPending {
                ask(request, &slot, context.periods, units: max(slot.nextRequest, request.units), asks: &asks)
            }
            return nil
        }
    }

    private static func decideOptimistic(
        _ request: GateRequest, _ rule: MeteredRule, _ slot: inout QuotaSlot,
        _ context: SlotContext, rate: GateLimits.Item?, at now: Timestamp, asks: inout [LeaseAsk]
    ) -> GateVerdict? {
        let configuration = context.configuration
        // Optimistic mode reads when the figures arrived, which a slot keeps in its rare state.
        slot.keepFiguresTime()
        let stale = !slot.figuresKnown || now.nanoseconds(since: slot.figuresAt) > configuration.optimisticRefresh.saturatingNanoseconds
        if stale, !slot.balance.requestPending, !slot.unreachable || now >= slot.retryAt {
            ask(request, &slot, context.periods, units: 0, asks: &asks)
        }
        guard slot.figuresKnown else {
            if slot.unreachable, now < slot.retryAt { return unreachableVerdict(request, rule, slot, context, rate: rate, at: now) }
            return nil
        }
        let left = slot.unleased > slot.spentSinceFigures ? slot.unleased - slot.spentSinceFigures : 0
        guard request.units <= left else { return quotaRefusal(request.plan.metered[Int(rule.index)], rule, slot, context.bounds, at: now) }
        slot.spentSinceFigures += request.units
        let remaining = remainingIncluded(rule, slot, at: now, margin: configuration.leaseExpiryMarginNanoseconds)
        let item = quotaItem(rule, slot, context.bounds, at: now, remaining: remaining)
        return .admit(GateAdmission(leasedUnits: 0, limits: GateLimits(quota: item, rate: rate), remaining: remaining))
    }

    private static func ask(_ request: GateRequest, _ slot: inout QuotaSlot, _ periods: PeriodTable, units: UInt64, asks: inout [LeaseAsk]) {
        slot.balance.requestSent()
        asks.append(LeaseAsk(keyID: request.keyID, feature: request.feature, periodID: periods.ids[Int(slot.period)], units: units))
    }

    // MARK: Verdicts

    private static func quotaRefusal(
        _ metered: EffectiveMeteredFeature, _ rule: MeteredRule, _ slot: QuotaSlot, _ bounds: PeriodBounds, at now: Timestamp
    ) -> GateVerdict {
        let untilReset = now.secondsRoundedUp(until: bounds.end)
        let limits = GateLimits(quota: quotaItem(rule, slot, bounds, at: now, remaining: 0))
        func refusal(_ policy: OverQuotaPolicy) -> GateVerdict {
            switch policy {
            case .paymentRequired(let price, let buys):
                return .refuse(GateRefusal(reason: .paymentRequired(price: price, buys: buys), feature: metered.name, limits: limits))
            case .block, .overage:
                return .refuse(GateRefusal(reason: .quotaExhausted, feature: metered.name, retryAfterSeconds: untilReset, limits: limits))
            }
        }
        switch metered.policy {
        case .block, .paymentRequired: return refusal(metered.policy)
        case .overage(_, _, let fallback): return refusal(fallback.policy)
        }
    }

    private static func unreachableVerdict(
        _ request: GateRequest, _ rule: MeteredRule, _ slot: QuotaSlot, _ context: SlotContext, rate: GateLimits.Item?,
        at now: Timestamp
    ) -> GateVerdict {
        let remaining = remainingIncluded(rule, slot, at: now, margin: context.configuration.leaseExpiryMarginNanoseconds)
        var limits = GateLimits(quota: quotaItem(rule, slot, context.bounds, at: now, remaining: remaining))
        switch rule.whenUnreachable {
        case .failOpen:
            limits.rate = rate  // an admission reports the rate tier too
            return .admit(GateAdmission(leasedUnits: 0, unreachable: true, limits: limits, remaining: remaining))
        case .failClosed:
            let retry = UInt64(max(1, context.configuration.unreachableRetry.components.seconds))
            let name = request.plan.metered[Int(rule.index)].name
            return .refuse(GateRefusal(reason: .collectorUnreachable, feature: name, retryAfterSeconds: retry, limits: limits))
        }
    }

    /// Included units left as far as this sidecar knows: what nobody held at the last grant plus what
    /// it holds, less the overage the cap pays for (those units are not included quota). `available`
    /// is the units held now, when the caller knows it already; `margin` the leases' expiry margin.
    @inline(__always)
    private static func remainingIncluded(
        _ rule: MeteredRule, _ slot: QuotaSlot, at now: Timestamp, margin: Int64, available: UInt64? = nil
    ) -> UInt64 {
        let included = saturatingAdd(rule.limit, slot.credits)
        guard slot.figuresKnown else {
            return included > slot.spentSinceFigures ? included - slot.spentSinceFigures : 0
        }
        let pool: UInt64
        switch rule.mode {
        case .strict: pool = saturatingAdd(slot.unleased, available ?? slot.balance.available(at: now, expiryMarginNanoseconds: margin))
        case .optimistic: pool = slot.unleased > slot.spentSinceFigures ? slot.unleased - slot.spentSinceFigures : 0
        }
        let budget = rule.budget ?? rule.limit
        let overagePart = budget > rule.limit ? budget - rule.limit : 0
        let left = pool > overagePart ? pool - overagePart : 0
        return min(left, included)
    }

    @inline(__always)
    private static func quotaItem(
        _ rule: MeteredRule, _ slot: QuotaSlot, _ bounds: PeriodBounds, at now: Timestamp, remaining: UInt64
    ) -> GateLimits.Item {
        GateLimits.Item(
            quota: saturatingAdd(rule.limit, slot.credits), windowSeconds: bounds.seconds,
            remaining: remaining, resetSeconds: now.secondsRoundedUp(until: bounds.end)
        )
    }

    static func saturatingAdd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    // MARK: Names

    /// The ids of keys last seen on plan `plan` (every key when nil).
    func keys(onPlan plan: String?) -> [CompactKeyID] {
        guard let plan else { return keys.entries.filter(\.value.inGate).map(\.id) }
        guard let index = planIndex[plan] else { return [] }
        return keys.entries.filter { $0.value.plan == index }.map(\.id)
    }

    /// The index of feature `name` in `featureNames`, adding it if new.
    mutating func index(ofFeature name: FeatureName) -> UInt32 {
        if let index = featureIndex[name] { return index }
        let index = UInt32(featureNames.count)
        featureNames.append(name)
        featureIndex[name] = index
        return index
    }

    private mutating func index(ofPlan name: String) -> UInt32 {
        if let index = planIndex[name] { return index }
        let index = UInt32(planNames.count)
        planNames.append(name)
        planIndex[name] = index
        return index
    }

    // MARK: Waiters

    /// Parks a call until the pending request for its key and feature is answered.
    mutating func park(_ waiter: QuotaWaiter, id: CompactKeyID) {
        waiters[SlotKey(id: id, feature: index(ofFeature: waiter.request.feature)), default: []].append(waiter)
    }

    /// Takes the calls parked on key `id` and `feature`.
    mutating func takeWaiters(_ id: CompactKeyID, _ feature: FeatureName) -> [QuotaWaiter] {
        guard let index = featureIndex[feature] else { return [] }
        return waiters.removeValue(forKey: SlotKey(id: id, feature: index)) ?? []
    }

    /// Whether calls are parked on key `id` and `feature`.
    func hasWaiters(_ id: CompactKeyID, _ feature: FeatureName) -> Bool {
        guard let index = featureIndex[feature] else { return false }
        return waiters[SlotKey(id: id, feature: index)] != nil
    }

    /// The first call parked on key `id` and `feature`.
    func oldestWaiter(_ id: CompactKeyID, _ feature: FeatureName) -> QuotaWaiter? {
        guard let index = featureIndex[feature] else { return nil }
        return waiters[SlotKey(id: id, feature: index)]?.first
    }
}

/// A lease request to send once the lock is released.
struct LeaseAsk {
    var keyID: String
    var feature: FeatureName
    var periodID: String
    var units: UInt64
}

/// A key and feature a plan change left exhausted.
struct PushedExhaustion: Hashable {
    var id: CompactKeyID
    var feature: FeatureName
}
