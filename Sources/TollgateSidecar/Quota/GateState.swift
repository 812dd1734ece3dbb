import TollgateCore

/// The quota gate's state and its decision, as a state machine: `decide` mutates and returns what
/// to answer plus the lease requests to send, which `QuotaGate` carries out outside its lock.
///
/// Threading: a value owned by `QuotaGate`, only touched under its lock.
struct GateState {
    /// Where a waiting call is parked: a key and a feature (an index into `featureNames`).
    struct SlotKey: Hashable {
        var id: CompactKeyID
        var feature: UInt32
    }

    let configuration: QuotaGate.Configuration
    var keys = KeyTable<KeyQuota>()
    /// Plan and feature names seen, so each key stores a 4-byte index rather than a name.
    private(set) var planNames: [String] = []
    private var planIndex: [String: UInt32] = [:]
    private(set) var featureNames: [FeatureName] = []
    private var featureIndex: [FeatureName: UInt32] = [:]
    /// Calls waiting for a lease or figures, first come first served. Few at any time, so they
    /// live here rather than in every slot.
    private(set) var waiters: [SlotKey: [QuotaWaiter]] = [:]
    var counts = DecisionCounts()
    /// Counts the times a key's state was dropped (a pushed plan change, revocation, resync). A
    /// grant asked for before the latest drop may be cut from figures that change voided.
    var dropEpoch: UInt64 = 0

    init(configuration: QuotaGate.Configuration) {
        self.configuration = configuration
    }

    // MARK: Deciding

    /// Decides `request` for key `id` (the request's key id, compacted once by the caller): the
    /// verdict, or nil when the call must wait for the collector. The verdict is returned without
    /// re-wrapping on the way up, since it is large enough for each copy to show.
    mutating func decide(_ request: GateRequest, id: CompactKeyID, at now: Timestamp, asks: inout [LeaseAsk]) -> GateVerdict? {
        let verdict = decideUncounted(request, id: id, at: now, asks: &asks)
        if let verdict { counts.count(verdict) }
        return verdict
    }

    /// Makes sure the slot for the request exists (as a decision that must wait would), without
    /// counting a decision: the asks it raises tell the caller which lease the slot is waiting for.
    /// A slot that already exists is left alone (deciding on it could spend a unit nobody uses).
    mutating func prepare(_ request: GateRequest, id: CompactKeyID, at now: Timestamp, asks: inout [LeaseAsk]) -> Bool {
        if withSlot(id, request.feature, { _ in true }) == true { return false }
        return decideUncounted(request, id: id, at: now, asks: &asks) == nil
    }

    private mutating func decideUncounted(_ request: GateRequest, id: CompactKeyID, at now: Timestamp, asks: inout [LeaseAsk]) -> GateVerdict? {
        guard let feature = Self.feature(request.feature, of: request.plan) else {
            return .refuse(GateRefusal(reason: .forbidden, feature: request.feature))
        }
        let position: Int
        if let found = keys.position(of: id) {
            position = found
            if planNames[Int(keys[position].plan)] != request.plan.planName {
                keys[position].plan = index(ofPlan: request.plan.planName)
            }
        } else {
            position = keys.insert(KeyQuota(plan: index(ofPlan: request.plan.planName)), for: id)
        }
        let rate = rateCheck(position, plan: request.plan, units: request.units, at: now)
        switch feature {
        case .boolean(let enabled):
            guard enabled else { return .refuse(GateRefusal(reason: .forbidden, feature: request.feature)) }
            if case .refused(let refusal) = rate { return .refuse(refusal) }
            consumeRate(position, units: request.units, at: now)
            return .admit(GateAdmission(leasedUnits: 0, limits: GateLimits(rate: rate.item)))
        case .metered(let metered):
            let configuration = self.configuration
            let verdict: GateVerdict? = withSlot(at: position, request.feature, creating: metered, at: now) { slot in
                if case .refused(var refusal) = rate {
                    let remaining = Self.remainingIncluded(metered, slot, at: now)
                    refusal.limits.quota = Self.quotaItem(metered, slot, at: now, remaining: remaining)
                    return .refuse(refusal)
                }
                return Self.decideMetered(request, metered, &slot, configuration, rate: rate.item, at: now, asks: &asks)
            }
            if case .allowed = rate, verdict?.isAdmitted == true { consumeRate(position, units: request.units, at: now) }
            return verdict
        }
    }

    /// The plan's feature `name`, found without hashing for the usual plan of a few features.
    @inline(__always)
    private static func feature(_ name: FeatureName, of plan: EffectivePlan) -> EffectiveFeature? {
        if plan.features.count <= 4 {
            for (candidate, feature) in plan.features where candidate == name { return feature }
            return nil
        }
        return plan.features[name]
    }

    private static func decideMetered(
        _ request: GateRequest, _ metered: EffectiveMeteredFeature, _ slot: inout QuotaSlot,
        _ configuration: QuotaGate.Configuration, rate: GateLimits.Item?, at now: Timestamp, asks: inout [LeaseAsk]
    ) -> GateVerdict? {
        guard let budget = metered.leaseBudget else {
            // Overage without a cap: every call is served; the collector bills what exceeds the limit.
            slot.spentSinceFigures = saturatingAdd(slot.spentSinceFigures, request.units)
            let remaining = remainingIncluded(metered, slot, at: now)
            return .admit(GateAdmission(leasedUnits: 0, limits: GateLimits(quota: quotaItem(metered, slot, at: now, remaining: remaining), rate: rate), remaining: remaining))
        }
        switch metered.quotaMode {
        case .optimistic:
            return decideOptimistic(request, metered, budget: budget, &slot, configuration, rate: rate, at: now, asks: &asks)
        case .strict:
            let admission = slot.balance.admit(units: request.units, at: now)
            if admission.admitted {
                slot.lastAdmit = MonotonicTicks.now()
                let low = slot.nextRequest / max(1, configuration.refillDivisor)
                if admission.available <= low, !slot.balance.requestPending, !slot.exhausted || now >= slot.recheckAt,
                   !slot.unreachable || now >= slot.retryAt {
                    ask(request, &slot, units: slot.nextRequest, asks: &asks)
                }
                let remaining = remainingIncluded(metered, slot, at: now, available: admission.available)
                return .admit(GateAdmission(
                    leasedUnits: request.units, limits: GateLimits(quota: quotaItem(metered, slot, at: now, remaining: remaining), rate: rate),
                    remaining: remaining
                ))
            }
            if slot.exhausted {
                if now >= slot.recheckAt, !slot.balance.requestPending {
                    slot.recheckAt = now.advanced(byNanoseconds: configuration.exhaustedRecheck.saturatingNanoseconds)
                    ask(request, &slot, units: slot.nextRequest, asks: &asks)
                }
                return quotaRefusal(metered, slot, at: now)
            }
            if slot.unreachable, now < slot.retryAt {
                return unreachableVerdict(metered, slot, configuration, rate: rate, at: now)
            }
            if !slot.balance.requestPending {
                ask(request, &slot, units: max(slot.nextRequest, request.units), asks: &asks)
            }
            return nil
        }
    }

    private static func decideOptimistic(
        _ request: GateRequest, _ metered: EffectiveMeteredFeature, budget: UInt64, _ slot: inout QuotaSlot,
        _ configuration: QuotaGate.Configuration, rate: GateLimits.Item?, at now: Timestamp, asks: inout [LeaseAsk]
    ) -> GateVerdict? {
        let stale = !slot.figuresKnown || now.nanoseconds(since: slot.figuresAt) > configuration.optimisticRefresh.saturatingNanoseconds
        if stale, !slot.balance.requestPending, !slot.unreachable || now >= slot.retryAt {
            ask(request, &slot, units: 0, asks: &asks)
        }
        guard slot.figuresKnown else {
            if slot.unreachable, now < slot.retryAt { return unreachableVerdict(metered, slot, configuration, rate: rate, at: now) }
            return nil
        }
        let left = slot.unleased > slot.spentSinceFigures ? slot.unleased - slot.spentSinceFigures : 0
        guard request.units <= left else { return quotaRefusal(metered, slot, at: now) }
        slot.spentSinceFigures += request.units
        let remaining = remainingIncluded(metered, slot, at: now)
        return .admit(GateAdmission(leasedUnits: 0, limits: GateLimits(quota: quotaItem(metered, slot, at: now, remaining: remaining), rate: rate), remaining: remaining))
    }

    private static func ask(_ request: GateRequest, _ slot: inout QuotaSlot, units: UInt64, asks: inout [LeaseAsk]) {
        slot.balance.requestSent()
        asks.append(LeaseAsk(keyID: request.keyID, feature: request.feature, periodID: slot.periodID, units: units))
    }

    // MARK: Verdicts

    private static func quotaRefusal(_ metered: EffectiveMeteredFeature, _ slot: QuotaSlot, at now: Timestamp) -> GateVerdict {
        let untilReset = now.secondsRoundedUp(until: slot.periodEnd)
        let limits = GateLimits(quota: quotaItem(metered, slot, at: now, remaining: 0))
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
        _ metered: EffectiveMeteredFeature, _ slot: QuotaSlot, _ configuration: QuotaGate.Configuration, rate: GateLimits.Item?,
        at now: Timestamp
    ) -> GateVerdict {
        let remaining = remainingIncluded(metered, slot, at: now)
        var limits = GateLimits(quota: quotaItem(metered, slot, at: now, remaining: remaining))
        switch metered.whenCollectorUnreachable {
        case .failOpen:
            limits.rate = rate  // an admission reports the rate tier too
            return .admit(GateAdmission(leasedUnits: 0, unreachable: true, limits: limits, remaining: remaining))
        case .failClosed:
            let retry = UInt64(max(1, configuration.unreachableRetry.components.seconds))
            return .refuse(GateRefusal(reason: .collectorUnreachable, feature: metered.name, retryAfterSeconds: retry, limits: limits))
        }
    }

    /// Included units left as far as this sidecar knows: what nobody held at the last grant plus what
    /// it holds, less the overage the cap pays for (those units are not included quota). `available`
    /// is the units held now, when the caller knows it already.
    private static func remainingIncluded(
        _ metered: EffectiveMeteredFeature, _ slot: QuotaSlot, at now: Timestamp, available: UInt64? = nil
    ) -> UInt64 {
        let included = saturatingAdd(metered.limit, slot.credits)
        guard slot.figuresKnown else {
            return included > slot.spentSinceFigures ? included - slot.spentSinceFigures : 0
        }
        let pool: UInt64
        switch metered.quotaMode {
        case .strict: pool = saturatingAdd(slot.unleased, available ?? slot.balance.available(at: now))
        case .optimistic: pool = slot.unleased > slot.spentSinceFigures ? slot.unleased - slot.spentSinceFigures : 0
        }
        let budget = metered.leaseBudget ?? metered.limit
        let overagePart = budget > metered.limit ? budget - metered.limit : 0
        let left = pool > overagePart ? pool - overagePart : 0
        return min(left, included)
    }

    private static func quotaItem(_ metered: EffectiveMeteredFeature, _ slot: QuotaSlot, at now: Timestamp, remaining: UInt64) -> GateLimits.Item {
        GateLimits.Item(
            name: metered.name.rawValue, quota: saturatingAdd(metered.limit, slot.credits), windowSeconds: slot.periodSeconds,
            remaining: remaining, resetSeconds: now.secondsRoundedUp(until: slot.periodEnd)
        )
    }

    static func saturatingAdd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    // MARK: Slots and names

    /// Runs `body` on the slot of `feature` for the key at `position`, making it (or starting it
    /// afresh in a new period: lazy rollover, the old period's leases are worthless) first.
    private mutating func withSlot<R>(
        at position: Int, _ feature: FeatureName, creating metered: EffectiveMeteredFeature, at now: Timestamp,
        _ body: (inout QuotaSlot) -> R
    ) -> R {
        let initialRequest = configuration.initialRequest
        func fresh(_ slot: inout QuotaSlot) {
            if !slot.contains(now) { slot = QuotaSlot(period: metered.period(containing: now), initialRequest: initialRequest) }
        }
        let inline = keys[position].feature
        if inline != KeyQuota.noFeature, featureNames[Int(inline)] == feature, keys[position].slot != nil {
            fresh(&keys[position].slot!)
            return body(&keys[position].slot!)
        }
        let index = index(ofFeature: feature)
        if keys[position].slot == nil {
            keys[position].feature = index
            keys[position].slot = QuotaSlot(period: metered.period(containing: now), initialRequest: initialRequest)
            return body(&keys[position].slot!)
        }
        let extras = keys[position].extras ?? KeyQuotaExtras()
        keys[position].extras = extras
        if extras.slots[index] == nil {
            extras.slots[index] = QuotaSlot(period: metered.period(containing: now), initialRequest: initialRequest)
        }
        fresh(&extras.slots[index]!)
        return body(&extras.slots[index]!)
    }

    /// Runs `body` on the existing slot of `feature` for key `id`; nil when there is none.
    @discardableResult
    mutating func withSlot<R>(_ id: CompactKeyID, _ feature: FeatureName, _ body: (inout QuotaSlot) -> R) -> R? {
        guard let position = keys.position(of: id), let index = featureIndex[feature] else { return nil }
        if keys[position].feature == index, keys[position].slot != nil { return body(&keys[position].slot!) }
        guard let extras = keys[position].extras, extras.slots[index] != nil else { return nil }
        return body(&extras.slots[index]!)
    }

    /// Calls `body` on every slot of the key at `position`, with its feature.
    mutating func forEachSlot(at position: Int, _ body: (FeatureName, inout QuotaSlot) -> Void) {
        let inline = keys[position].feature
        if inline != KeyQuota.noFeature, keys[position].slot != nil { body(featureNames[Int(inline)], &keys[position].slot!) }
        if let extras = keys[position].extras {
            for index in extras.slots.keys { body(featureNames[Int(index)], &extras.slots[index]!) }
        }
    }

    /// The ids of keys last seen on plan `plan` (every key when nil).
    func keys(onPlan plan: String?) -> [CompactKeyID] {
        guard let plan else { return keys.entries.map(\.id) }
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
