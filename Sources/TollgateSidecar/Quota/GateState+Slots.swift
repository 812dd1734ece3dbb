import TollgateCore

/// The gate's slots: finding or making the slot of a key and feature (with lazy rollover), and
/// the period table slots index into.
///
/// Threading: part of `GateState`, only touched under the key cache's lock.
extension GateState {
    /// Runs `body` on the slot of `feature` for the key at `position` and its period's bounds,
    /// making the slot (or starting it afresh in a new period: lazy rollover, the old period's
    /// leases are worthless) first.
    mutating func withSlot<R>(
        at position: Int, _ feature: FeatureName, creating plan: GatePlan, _ rule: MeteredRule, at now: Timestamp,
        _ body: (inout QuotaSlot, PeriodBounds) -> R
    ) -> R {
        let initialRequest = configuration.initialRequest
        let periods = self.periods
        func fresh() -> QuotaSlot {
            var slot = QuotaSlot(period: intern(plan.metered[Int(rule.index)].period(containing: now)), initialRequest: initialRequest)
            startsExhausted(&slot, position, feature, at: now)
            return slot
        }
        let inline = keys[position].feature
        if inline != CachedKey.noFeature, featureNames[Int(inline)] == feature, let period = keys[position].slot?.period {
            var bounds = periods.bounds[Int(period)]
            if !bounds.contains(now) {
                let slot = fresh()
                bounds = periods.bounds[Int(slot.period)]
                keys[position].slot = slot
            }
            return body(&keys[position].slot!, bounds)
        }
        let index = index(ofFeature: feature)
        if keys[position].slot == nil {
            let slot = fresh()
            keys[position].feature = index
            keys[position].slot = slot
            return body(&keys[position].slot!, periods.bounds[Int(slot.period)])
        }
        let extras = keys[position].extras ?? KeyQuotaExtras()
        keys[position].extras = extras
        if let period = extras.slots[index]?.period, periods.bounds[Int(period)].contains(now) {
            return body(&extras.slots[index]!, periods.bounds[Int(period)])
        }
        let slot = fresh()
        extras.slots[index] = slot
        return body(&extras.slots[index]!, periods.bounds[Int(slot.period)])
    }

    /// A new slot starts exhausted, and refuses without a lease round trip until its recheck, when
    /// a plan change said its key and feature were left with nothing in its period.
    mutating func startsExhausted(_ slot: inout QuotaSlot, _ position: Int, _ feature: FeatureName, at now: Timestamp) {
        guard !pushedExhaustion.isEmpty,
              let periodID = pushedExhaustion.removeValue(forKey: PushedExhaustion(id: keys.entries[position].id, feature: feature)),
              periods.ids[Int(slot.period)] == periodID
        else { return }
        slot.exhausted = true
        slot.recheckAt = now.advanced(byNanoseconds: configuration.exhaustedRecheck.saturatingNanoseconds)
    }

    /// Forgets what plan changes said of key `id`'s features.
    mutating func forgetPushedExhaustion(_ id: CompactKeyID) {
        guard !pushedExhaustion.isEmpty else { return }
        pushedExhaustion = pushedExhaustion.filter { $0.key.id != id }
    }

    /// Runs `body` on the existing slot of `feature` for key `id`, with its period; nil when there is none.
    @discardableResult
    mutating func withSlot<R>(_ id: CompactKeyID, _ feature: FeatureName, _ body: (inout QuotaSlot, SlotPeriod) -> R) -> R? {
        guard let position = position(of: id), let index = featureIndex[feature] else { return nil }
        if keys[position].feature == index, let period = keys[position].slot?.period {
            return body(&keys[position].slot!, slotPeriod(period))
        }
        guard let extras = keys[position].extras, let period = extras.slots[index]?.period else { return nil }
        return body(&extras.slots[index]!, slotPeriod(period))
    }

    /// Calls `body` on every slot of the key at `position`, with its feature and period id.
    mutating func forEachSlot(at position: Int, _ body: (FeatureName, String, inout QuotaSlot) -> Void) {
        let inline = keys[position].feature
        if inline != CachedKey.noFeature, let period = keys[position].slot?.period {
            body(featureNames[Int(inline)], periods.ids[Int(period)], &keys[position].slot!)
        }
        if let extras = keys[position].extras {
            for (index, slot) in extras.slots { body(featureNames[Int(index)], periods.ids[Int(slot.period)], &extras.slots[index]!) }
        }
    }

    /// Calls `body` on every slot of the key at `position` (their period indices may be stale:
    /// this is how a compaction rewrites them).
    fileprivate mutating func updateSlots(at position: Int, _ body: (inout QuotaSlot) -> Void) {
        if keys[position].slot != nil { body(&keys[position].slot!) }
        if let extras = keys[position].extras {
            for index in extras.slots.keys { body(&extras.slots[index]!) }
        }
    }

    fileprivate func slotPeriod(_ index: UInt32) -> SlotPeriod {
        SlotPeriod(bounds: periods.bounds[Int(index)], id: periods.ids[Int(index)])
    }

    /// The index of `period` in the period table, adding it; first drops the periods no slot is
    /// in, when the table has grown to `compactAt`.
    fileprivate mutating func intern(_ period: Period) -> UInt32 {
        if let index = periods.index(of: period) { return index }
        if periods.count >= periods.compactAt {
            var used = [Bool](repeating: false, count: periods.count)
            for position in keys.entries.indices {
                updateSlots(at: position) { slot in used[Int(slot.period)] = true }
            }
            let remap = periods.compact(keeping: used)
            for position in keys.entries.indices {
                updateSlots(at: position) { slot in slot.period = remap[Int(slot.period)] }
            }
        }
        return periods.append(period)
    }
}

/// What deciding on a slot reads besides the slot: its period's bounds, the period table (for the
/// period's id when asking for a lease) and the gate's configuration.
struct SlotContext {
    var bounds: PeriodBounds
    /// Unowned: the gate's state owns the table for longer than any decision, and holding it
    /// strongly would cost a retain and a release on every call.
    unowned(unsafe) var periods: PeriodTable
    var configuration: QuotaGate.Configuration
}

/// A slot's period as the gate's bookkeeping outside deciding reads it.
struct SlotPeriod {
    var bounds: PeriodBounds
    var id: String
}

