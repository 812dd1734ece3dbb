import Foundation
import Metrics
import TollgateCore
import TollgateWire

/// Carries lease requests and returns to the collectors (`CollectorRequestChannel` in production).
public protocol LeaseTransport: Sendable {
    /// Sends `body` and waits for the reply, at most `timeout`.
    func request(_ body: Tollgate_V1_Envelope.OneOf_Body, timeout: Duration) async throws -> Tollgate_V1_Envelope
    /// Sends `body` without waiting for a reply (lease returns).
    func send(_ body: Tollgate_V1_Envelope.OneOf_Body)
}

/// The sidecar's local decision point: admits or refuses each call from what it holds, without a
/// network round trip in the common case.
///
/// For a metered feature in strict mode (the default) the gate admits only against leases of quota
/// the collector granted this sidecar, and asks for the next lease in the background when the held
/// units run low, so steady traffic never waits. Only the first call of a key and feature (or a
/// call that finds the leases empty while more are on the way) waits for one round trip, bounded by
/// `Configuration.requestTimeout`; if no collector answers, the plan's unreachable policy decides
/// (fail-open serves and reports later, fail-closed serves only what is held, then 503).
/// Optimistic mode admits against the last figures the collector gave plus local usage.
/// The key's rate tier is a token bucket per key, this sidecar's share of the fleet-wide rate.
///
/// Threading: safe from any thread. `decide` is a lock, two dictionary reads and a little
/// arithmetic, for the event loops; it never blocks on I/O. `waitForDecision` is the slow path.
/// Lease requests run as tasks and their answers are applied under the same lock.
///
/// ```swift
/// let gate = QuotaGate(transport: channel, holder: { ("sc-1", epoch) })
/// let request = GateRequest(keyID: id, plan: plan, feature: .apiCall)
/// let verdict = gate.decide(request) ?? await gate.waitForDecision(request)
/// ```
public final class QuotaGate: @unchecked Sendable {
    /// Sizes and timings.
    public struct Configuration: Sendable, Hashable {
        /// Units asked for in a key's first lease request; later requests double while grants come
        /// back in full, up to `maxRequest`.
        public var initialRequest: UInt64 = 100
        /// The largest lease request.
        public var maxRequest: UInt64 = 1_000
        /// Ask for the next lease when the units held fall to this fraction of the last request (1/n).
        public var refillDivisor: UInt64 = 2
        /// How long a waiting call waits for the collector.
        public var requestTimeout: Duration = .milliseconds(500)
        /// After the collector granted nothing, how long until the gate asks again.
        public var exhaustedRecheck: Duration = .seconds(1)
        /// After the collector could not be reached, how long the unreachable policy applies before asking again.
        public var unreachableRetry: Duration = .seconds(1)
        /// Optimistic mode: how old the figures may get before the gate refreshes them.
        public var optimisticRefresh: Duration = .milliseconds(200)
        /// Granted nothing while other sidecars still hold units: ask again after this long (callers
        /// keep waiting, up to `requestTimeout`), since idle holders hand their units back.
        public var scarceRetry: Duration = .milliseconds(20)
        /// On `exhausted`, units of a slot not admitted from for this long go back to the collector.
        public var idleBeforeReturn: Duration = .milliseconds(20)

        /// The defaults.
        public init() {}
    }

    private let configuration: Configuration
    private let transport: any LeaseTransport
    private let holder: @Sendable () -> (sidecarID: String, bootEpoch: UInt64)
    private let clock: any TollgateClock
    private let metrics = QuotaGateMetrics()
    private let lock = NSLock()
    private var keys: [String: KeyQuota] = [:]

    /// A gate that leases through `transport` as `holder` (the sidecar id and boot epoch its usage batches carry).
    public init(
        configuration: Configuration = Configuration(), transport: any LeaseTransport,
        clock: any TollgateClock = SystemClock(),
        holder: @escaping @Sendable () -> (sidecarID: String, bootEpoch: UInt64)
    ) {
        self.configuration = configuration
        self.transport = transport
        self.clock = clock
        self.holder = holder
    }

    /// The current time on the gate's clock.
    public func now() -> Timestamp { clock.now() }

    /// Decides at once, or returns nil when the call must wait for the collector (then call `waitForDecision`).
    public func decide(_ request: GateRequest, at now: Timestamp) -> GateVerdict? {
        var asks: [LeaseAsk] = []
        let outcome: Outcome = lock.withLock {
            decideLocked(request, at: now, asks: &asks)
        }
        start(asks)
        switch outcome {
        case .verdict(let verdict):
            metrics.count(verdict)
            return verdict
        case .wait:
            return nil
        }
    }

    /// Decides, waiting for the collector's answer if need be (at most about `requestTimeout`).
    public func waitForDecision(_ request: GateRequest, at now: Timestamp) async -> GateVerdict {
        metrics.waited.increment()
        let verdict: GateVerdict = await withCheckedContinuation { continuation in
            var asks: [LeaseAsk] = []
            let immediate: GateVerdict? = lock.withLock {
                switch decideLocked(request, at: now, asks: &asks) {
                case .verdict(let verdict):
                    return verdict
                case .wait:
                    keys[request.keyID]?.slots[request.feature]?.waiters.append(QuotaWaiter(request: request, continuation: continuation))
                    return nil
                }
            }
            start(asks)
            if let immediate { continuation.resume(returning: immediate) }
        }
        metrics.count(verdict)
        return verdict
    }

    /// Gives back units of an admitted call that was not served after all (the upstream was never
    /// reached), so they are not lost until the lease expires.
    public func refund(keyID: String, feature: FeatureName, leasedUnits: UInt64, at now: Timestamp) {
        guard leasedUnits > 0 else { return }
        lock.withLock {
            guard var slot = keys[keyID]?.slots[feature], slot.period.contains(now) else { return }
            slot.balance.add(Lease(id: 0, holder: "", key: "", feature: feature, periodID: "", units: leasedUnits,
                                   expiresAt: slot.balance.leases.first?.lease.expiresAt ?? now))
            keys[keyID]!.slots[feature] = slot
        }
    }

    /// What a call would be told now, without spending anything (the local `check` API). Nil when
    /// the gate has no figures yet for the key and feature.
    public func balance(keyID: String, feature: FeatureName, at now: Timestamp) -> UInt64? {
        lock.withLock {
            guard let slot = keys[keyID]?.slots[feature], slot.period.contains(now), slot.figuresKnown else { return nil }
            return Self.saturatingAdd(slot.unleased, slot.balance.available(at: now))
        }
    }

    // MARK: Updates from the collector

    /// Applies a pushed update; returns false when it was stale and dropped.
    @discardableResult
    public func apply(_ update: Tollgate_V1_QuotaUpdate, at now: Timestamp) -> Bool {
        var returns: [Tollgate_V1_LeaseReturn] = []
        let applied: Bool = lock.withLock {
            let targets: [String]
            if update.keyID.isEmpty {
                // Fleet-wide: a plan changed; every key on it starts afresh.
                targets = keys.filter { update.plan.isEmpty || $0.value.planName == update.plan }.map(\.key)
            } else {
                targets = keys[update.keyID] == nil ? [] : [update.keyID]
            }
            if !update.keyID.isEmpty, let key = keys[update.keyID], update.version < key.version { return false }
            for id in targets {
                switch update.kind {
                case .exhausted:
                    // Nothing is left to lease: units this sidecar holds but is not using go back,
                    // so a sidecar that still has callers can have them.
                    let feature = FeatureName(update.feature)
                    guard var slot = keys[id]?.slots[feature], slot.period.id == update.periodID else { continue }
                    slot.unleased = 0
                    if slot.waiters.isEmpty, ContinuousClock.now - slot.lastAdmit >= configuration.idleBeforeReturn {
                        let unused = slot.balance.returnAll().reduce(UInt64(0)) { $0 + $1.unused }
                        if unused > 0 { returns.append(leaseReturn(id, feature, slot.period.id, unused)) }
                    }
                    keys[id]!.slots[feature] = slot
                case .credited:
                    if var slot = keys[id]?.slots[FeatureName(update.feature)] {
                        slot.exhausted = false
                        slot.recheckAt = .min
                        keys[id]!.slots[FeatureName(update.feature)] = slot
                    }
                    if update.bucketCreditNano > 0, var bucket = keys[id]?.bucket {
                        bucket.addPaidTokens(UInt64(update.bucketCreditNano) / UInt64(TokenBucket.nanoTokensPerToken), at: now)
                        keys[id]!.bucket = bucket
                    }
                case .planChanged, .keyRevoked, .keyAdded:
                    returns += dropLocked(id)
                case .periodRolled, .unspecified, .UNRECOGNIZED:
                    break
                }
                if let version = keys[id]?.version, version < update.version { keys[id]!.version = update.version }
            }
            return true
        }
        for giveBack in returns { transport.send(.leaseReturn(giveBack)) }
        metrics.updates(applied: applied)
        return applied
    }

    /// Forgets everything (after a resync): hands back every lease.
    public func resetAll() {
        let returns: [Tollgate_V1_LeaseReturn] = lock.withLock {
            keys.keys.flatMap { dropLocked($0) }
        }
        for giveBack in returns { transport.send(.leaseReturn(giveBack)) }
    }

    /// Hands back every unused unit (graceful shutdown); calls after this still work but start afresh.
    public func returnAllLeases() {
        resetAll()
    }

    /// Drops leases past their usable life and tells the collector about their unused units. Call
    /// about once a second.
    public func expireLeases(at now: Timestamp) {
        var returns: [Tollgate_V1_LeaseReturn] = []
        lock.withLock {
            for (id, key) in keys {
                for (feature, var slot) in key.slots where !slot.balance.leases.isEmpty {
                    let expired = slot.balance.expire(at: now)
                    let unused = expired.reduce(UInt64(0)) { $0 + $1.unused }
                    if unused > 0 { returns.append(leaseReturn(id, feature, slot.period.id, unused)) }
                    keys[id]!.slots[feature] = slot
                }
            }
        }
        for giveBack in returns { transport.send(.leaseReturn(giveBack)) }
    }

    /// Keys cached, for metrics and tests.
    public var cachedKeys: Int { lock.withLock { keys.count } }

    // MARK: Deciding (under the lock)

    enum Outcome {
        case verdict(GateVerdict)
        case wait
    }

    struct LeaseAsk {
        var keyID: String
        var feature: FeatureName
        var periodID: String
        var units: UInt64
    }

    private func decideLocked(_ request: GateRequest, at now: Timestamp, asks: inout [LeaseAsk]) -> Outcome {
        guard let feature = request.plan.features[request.feature] else {
            return .verdict(.refuse(GateRefusal(reason: .forbidden, feature: request.feature)))
        }
        var key = keys.removeValue(forKey: request.keyID) ?? KeyQuota(planName: request.plan.planName)
        defer { keys[request.keyID] = key }
        key.planName = request.plan.planName
        let rate = rateCheck(&key, plan: request.plan, units: request.units, at: now)
        switch feature {
        case .boolean(let enabled):
            guard enabled else { return .verdict(.refuse(GateRefusal(reason: .forbidden, feature: request.feature))) }
            if case .refused(let refusal) = rate { return .verdict(.refuse(refusal)) }
            consumeRate(&key, units: request.units, at: now)
            return .verdict(.admit(GateAdmission(leasedUnits: 0, headers: rate.headers)))
        case .metered(let metered):
            var slot = key.slots[request.feature] ?? QuotaSlot(period: metered.period(containing: now), initialRequest: configuration.initialRequest)
            if !slot.period.contains(now) {
                // Lazy rollover: leases of an ended period are worthless; a new period starts from zero.
                slot = QuotaSlot(period: metered.period(containing: now), initialRequest: configuration.initialRequest)
            }
            defer { key.slots[request.feature] = slot }
            if case .refused(let refusal) = rate {
                var refusal = refusal
                refusal.headers = quotaHeaders(metered, slot, at: now, remaining: remainingIncluded(metered, slot, at: now)).merging(refusal.headers)
                return .verdict(.refuse(refusal))
            }
            let outcome = decideMetered(request, metered, &slot, key: request.keyID, at: now, asks: &asks)
            if case .verdict(.admit(var admission)) = outcome {
                consumeRate(&key, units: request.units, at: now)
                admission.headers = admission.headers.merging(rate.headers)
                return .verdict(.admit(admission))
            }
            return outcome
        }
    }

    private func decideMetered(
        _ request: GateRequest, _ metered: EffectiveMeteredFeature, _ slot: inout QuotaSlot, key: String,
        at now: Timestamp, asks: inout [LeaseAsk]
    ) -> Outcome {
        guard let budget = metered.leaseBudget else {
            // Overage without a cap: every call is served; the collector bills what exceeds the limit.
            slot.spentSinceFigures = Self.saturatingAdd(slot.spentSinceFigures, request.units)
            let remaining = remainingIncluded(metered, slot, at: now)
            return .verdict(.admit(GateAdmission(leasedUnits: 0, headers: quotaHeaders(metered, slot, at: now, remaining: remaining), remaining: remaining)))
        }
        switch metered.quotaMode {
        case .optimistic:
            return decideOptimistic(request, metered, budget: budget, &slot, key: key, at: now, asks: &asks)
        case .strict:
            let admission = slot.balance.admit(units: request.units, at: now)
            if admission.admitted {
                slot.lastAdmit = .now
                let low = slot.nextRequest / max(1, configuration.refillDivisor)
                if !slot.balance.requestPending, !slot.exhausted || now >= slot.recheckAt, !slot.unreachable || now >= slot.retryAt,
                   admission.available <= low {
                    ask(key, request.feature, &slot, units: slot.nextRequest, asks: &asks)
                }
                let remaining = remainingIncluded(metered, slot, at: now)
                return .verdict(.admit(GateAdmission(leasedUnits: request.units, headers: quotaHeaders(metered, slot, at: now, remaining: remaining), remaining: remaining)))
            }
            if slot.exhausted {
                if now >= slot.recheckAt, !slot.balance.requestPending {
                    slot.recheckAt = now.advanced(byNanoseconds: configuration.exhaustedRecheck.saturatingNanoseconds)
                    ask(key, request.feature, &slot, units: slot.nextRequest, asks: &asks)
                }
                return .verdict(quotaRefusal(metered, slot, at: now))
            }
            if slot.unreachable, now < slot.retryAt {
                return .verdict(unreachableVerdict(metered, slot, at: now))
            }
            if !slot.balance.requestPending {
                ask(key, request.feature, &slot, units: max(slot.nextRequest, request.units), asks: &asks)
            }
            return .wait
        }
    }

    private func decideOptimistic(
        _ request: GateRequest, _ metered: EffectiveMeteredFeature, budget: UInt64, _ slot: inout QuotaSlot, key: String,
        at now: Timestamp, asks: inout [LeaseAsk]
    ) -> Outcome {
        let stale = !slot.figuresKnown || now.nanoseconds(since: slot.figuresAt) > configuration.optimisticRefresh.saturatingNanoseconds
        if stale, !slot.balance.requestPending, !slot.unreachable || now >= slot.retryAt {
            ask(key, request.feature, &slot, units: 0, asks: &asks)
        }
        guard slot.figuresKnown else {
            if slot.unreachable, now < slot.retryAt { return .verdict(unreachableVerdict(metered, slot, at: now)) }
            return .wait
        }
        let left = slot.unleased > slot.spentSinceFigures ? slot.unleased - slot.spentSinceFigures : 0
        guard request.units <= left else { return .verdict(quotaRefusal(metered, slot, at: now)) }
        slot.spentSinceFigures += request.units
        let remaining = remainingIncluded(metered, slot, at: now)
        return .verdict(.admit(GateAdmission(leasedUnits: 0, headers: quotaHeaders(metered, slot, at: now, remaining: remaining), remaining: remaining)))
    }

    private func ask(_ key: String, _ feature: FeatureName, _ slot: inout QuotaSlot, units: UInt64, asks: inout [LeaseAsk]) {
        slot.balance.requestSent()
        asks.append(LeaseAsk(keyID: key, feature: feature, periodID: slot.period.id, units: units))
    }

    // MARK: Verdicts

    private func quotaRefusal(_ metered: EffectiveMeteredFeature, _ slot: QuotaSlot, at now: Timestamp) -> GateVerdict {
        let untilReset = now.secondsRoundedUp(until: slot.period.end)
        let headers = quotaHeaders(metered, slot, at: now, remaining: 0)
        func refusal(_ policy: OverQuotaPolicy) -> GateVerdict {
            switch policy {
            case .paymentRequired(let price, let buys):
                return .refuse(GateRefusal(reason: .paymentRequired(price: price, buys: buys), feature: metered.name, headers: headers))
            case .block, .overage:
                return .refuse(GateRefusal(reason: .quotaExhausted, feature: metered.name, retryAfterSeconds: untilReset, headers: headers))
            }
        }
        switch metered.policy {
        case .block, .paymentRequired: return refusal(metered.policy)
        case .overage(_, _, let fallback): return refusal(fallback.policy)
        }
    }

    private func unreachableVerdict(_ metered: EffectiveMeteredFeature, _ slot: QuotaSlot, at now: Timestamp) -> GateVerdict {
        let remaining = remainingIncluded(metered, slot, at: now)
        let headers = quotaHeaders(metered, slot, at: now, remaining: remaining)
        switch metered.whenCollectorUnreachable {
        case .failOpen:
            return .admit(GateAdmission(leasedUnits: 0, unreachable: true, headers: headers, remaining: remaining))
        case .failClosed:
            let retry = UInt64(max(1, configuration.unreachableRetry.components.seconds))
            return .refuse(GateRefusal(reason: .collectorUnreachable, feature: metered.name, retryAfterSeconds: retry, headers: headers))
        }
    }

    /// Included units left as far as this sidecar knows: what nobody held at the last grant plus what
    /// it holds, less the overage the cap pays for (those units are not included quota).
    private func remainingIncluded(_ metered: EffectiveMeteredFeature, _ slot: QuotaSlot, at now: Timestamp) -> UInt64 {
        let included = Self.saturatingAdd(metered.limit, slot.credits)
        guard slot.figuresKnown else {
            return included > slot.spentSinceFigures ? included - slot.spentSinceFigures : 0
        }
        let pool: UInt64
        switch metered.quotaMode {
        case .strict: pool = Self.saturatingAdd(slot.unleased, slot.balance.available(at: now))
        case .optimistic: pool = slot.unleased > slot.spentSinceFigures ? slot.unleased - slot.spentSinceFigures : 0
        }
        let overagePart = (metered.leaseBudget ?? metered.limit) > metered.limit ? metered.leaseBudget! - metered.limit : 0
        let left = pool > overagePart ? pool - overagePart : 0
        return min(left, included)
    }

    private func quotaHeaders(_ metered: EffectiveMeteredFeature, _ slot: QuotaSlot, at now: Timestamp, remaining: UInt64) -> RateLimitHeaders {
        let name = metered.name.rawValue
        return RateLimitHeaders(
            policies: [.init(name: name, quota: Self.saturatingAdd(metered.limit, slot.credits), windowSeconds: slot.period.lengthInSeconds)],
            limits: [.init(name: name, remaining: remaining, resetSeconds: now.secondsRoundedUp(until: slot.period.end))]
        )
    }

    // MARK: Rate tier

    enum RateCheck {
        case none
        case allowed(RateLimitHeaders)
        case refused(GateRefusal)

        var headers: RateLimitHeaders {
            switch self {
            case .none: .none
            case .allowed(let headers): headers
            case .refused(let refusal): refusal.headers
            }
        }
    }

    /// Whether the key's bucket has `units` tokens now (nothing is taken yet).
    private func rateCheck(_ key: inout KeyQuota, plan: EffectivePlan, units: UInt64, at now: Timestamp) -> RateCheck {
        guard let tier = plan.rateTier else {
            key.bucket = nil
            key.bucketTier = nil
            return .none
        }
        let share = Self.share(of: tier, among: key.bucketShare)
        if key.bucketTier != share || key.bucket == nil {
            let level = key.bucket.map { min($0.wholeTokens, share.capacity) }
            key.bucket = TokenBucket(tier: share, tokens: level, at: now)
            key.bucketTier = share
        }
        var probe = key.bucket!
        let decision = probe.admit(units, tier: share, at: now)
        if decision.allowed { return .allowed(decision.headers) }
        key.bucket!.advance(to: now)
        switch decision.outcome {
        case .paymentRequired(let price, let buys):
            return .refused(GateRefusal(reason: .paymentRequired(price: price, buys: buys), feature: .init(tier.name),
                                        retryAfterSeconds: decision.retryAfterSeconds, headers: decision.headers))
        default:
            return .refused(GateRefusal(reason: .rateLimited, feature: .init(tier.name),
                                        retryAfterSeconds: decision.retryAfterSeconds, headers: decision.headers))
        }
    }

    private func consumeRate(_ key: inout KeyQuota, units: UInt64, at now: Timestamp) {
        guard key.bucket != nil else { return }
        _ = key.bucket!.consume(units, at: now)
    }

    /// This sidecar's part of a fleet-wide tier shared by `holders` sidecars: capacity and refill
    /// divided evenly (capacity at least 1), the refill kept exact as a rational rate.
    static func share(of tier: RateTier, among holders: UInt64) -> RateTier {
        guard holders > 1 else { return tier }
        let perSeconds = tier.refill.perSeconds.multipliedReportingOverflow(by: holders)
        return RateTier(
            name: tier.name, capacity: max(1, tier.capacity / holders),
            refill: RefillRate(tokens: tier.refill.tokens, perSeconds: perSeconds.overflow ? .max : perSeconds.partialValue),
            paidRefill: tier.paidRefill
        )
    }

    // MARK: Talking to the collector

    private func start(_ asks: [LeaseAsk]) {
        for ask in asks {
            metrics.leaseRequests.increment()
            Task { await self.perform(ask) }
        }
    }

    private func perform(_ ask: LeaseAsk) async {
        let identity = holder()
        var request = Tollgate_V1_LeaseRequest()
        request.sidecarID = identity.sidecarID
        request.bootEpoch = identity.bootEpoch
        request.keyID = ask.keyID
        request.feature = ask.feature.rawValue
        request.periodID = ask.periodID
        request.unitsWanted = ask.units
        let result: Result<Tollgate_V1_LeaseGrant, any Error>
        if identity.bootEpoch == 0 {
            result = .failure(CollectorRequestChannel.RequestError(reason: "uplink not started"))
        } else {
            do {
                let reply = try await transport.request(.leaseRequest(request), timeout: configuration.requestTimeout)
                switch reply.body {
                case .leaseGrant(let grant) where grant.keyID == ask.keyID && grant.feature == ask.feature.rawValue:
                    result = .success(grant)
                case .error(let error):
                    result = .failure(CollectorRequestChannel.RequestError(reason: "collector: \(error.message)"))
                default:
                    result = .failure(CollectorRequestChannel.RequestError(reason: "unexpected reply to a lease request"))
                }
            } catch {
                result = .failure(error)
            }
        }
        granted(ask, result, at: clock.now())
    }

    private func granted(_ ask: LeaseAsk, _ result: Result<Tollgate_V1_LeaseGrant, any Error>, at now: Timestamp) {
        var resumes: [(CheckedContinuation<GateVerdict, Never>, GateVerdict)] = []
        var asks: [LeaseAsk] = []
        var returns: [Tollgate_V1_LeaseReturn] = []
        var retry: LeaseAsk?
        defer {
            if let retry {
                let delay = configuration.scarceRetry
                Task {
                    try? await Task.sleep(for: delay)
                    await self.perform(retry)
                }
            }
        }
        lock.withLock {
            guard var key = keys[ask.keyID], var slot = key.slots[ask.feature], slot.period.id == ask.periodID else {
                // The slot rolled over or was dropped meanwhile: hand the units straight back.
                if case .success(let grant) = result, grant.units > 0 {
                    returns.append(leaseReturn(ask.keyID, ask.feature, ask.periodID, grant.units))
                }
                return
            }
            switch result {
            case .success(let grant):
                metrics.leaseUnits.increment(by: Int(clamping: grant.units))
                slot.unleased = grant.remainingUnleased
                slot.used = grant.used
                slot.credits = grant.credits
                slot.figuresKnown = true
                slot.figuresAt = now
                slot.spentSinceFigures = 0
                slot.unreachable = false
                if grant.holders > 0 { key.bucketShare = grant.holders }
                if grant.units == 0, ask.units > 0, grant.outstanding > 0,
                   let oldest = slot.waiters.first, ContinuousClock.now - oldest.since < configuration.requestTimeout {
                    // Others hold what is left, and may hand it back: keep the callers waiting and
                    // ask again shortly (the request stays pending, so new callers wait too).
                    key.slots[ask.feature] = slot
                    keys[ask.keyID] = key
                    retry = ask
                    return
                }
                if grant.units > 0 {
                    slot.balance.add(Lease(
                        id: UInt64(grant.leaseID) ?? 0, holder: "", key: "", feature: ask.feature, periodID: "",
                        units: grant.units, expiresAt: Timestamp(milliseconds: grant.expiresAtUnixMs)
                    ))
                    slot.exhausted = false
                    slot.nextRequest = grant.units >= ask.units ? min(configuration.maxRequest, ask.units * 2) : max(1, grant.units)
                } else {
                    slot.balance.requestFinished()
                    if ask.units > 0 {
                        slot.exhausted = true
                        slot.recheckAt = now.advanced(byNanoseconds: configuration.exhaustedRecheck.saturatingNanoseconds)
                    }
                }
            case .failure:
                metrics.leaseFailures.increment()
                slot.balance.requestFinished()
                slot.unreachable = true
                slot.retryAt = now.advanced(byNanoseconds: configuration.unreachableRetry.saturatingNanoseconds)
            }
            let waiters = slot.waiters
            slot.waiters = []
            key.slots[ask.feature] = slot
            keys[ask.keyID] = key
            for waiter in waiters {
                switch decideLocked(waiter.request, at: now, asks: &asks) {
                case .verdict(let verdict):
                    resumes.append((waiter.continuation, verdict))
                case .wait:
                    keys[ask.keyID]?.slots[ask.feature]?.waiters.append(waiter)
                }
            }
        }
        start(asks)
        for giveBack in returns { transport.send(.leaseReturn(giveBack)) }
        for (continuation, verdict) in resumes { continuation.resume(returning: verdict) }
    }

    /// Removes a key's state; returns the lease returns to send. Waiters are answered by their
    /// pending requests (which find the slot gone and hand their units back).
    private func dropLocked(_ id: String) -> [Tollgate_V1_LeaseReturn] {
        guard let key = keys.removeValue(forKey: id) else { return [] }
        var returns: [Tollgate_V1_LeaseReturn] = []
        for (feature, var slot) in key.slots {
            let unused = slot.balance.returnAll().reduce(UInt64(0)) { $0 + $1.unused }
            if unused > 0 { returns.append(leaseReturn(id, feature, slot.period.id, unused)) }
            for waiter in slot.waiters {
                // Asked again from scratch, without the dropped state.
                let request = waiter.request
                let continuation = waiter.continuation
                Task { continuation.resume(returning: await self.waitForDecision(request, at: self.clock.now())) }
            }
        }
        return returns
    }

    private func leaseReturn(_ keyID: String, _ feature: FeatureName, _ periodID: String, _ units: UInt64) -> Tollgate_V1_LeaseReturn {
        let identity = holder()
        var giveBack = Tollgate_V1_LeaseReturn()
        giveBack.sidecarID = identity.sidecarID
        giveBack.bootEpoch = identity.bootEpoch
        giveBack.keyID = keyID
        giveBack.feature = feature.rawValue
        giveBack.periodID = periodID
        giveBack.unusedUnits = units
        return giveBack
    }

    static func saturatingAdd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }
}

extension QuotaGate {
    /// Decides at the gate's clock's current time.
    public func decide(_ request: GateRequest) -> GateVerdict? { decide(request, at: now()) }

    /// Waits for a decision at the gate's clock's current time.
    public func waitForDecision(_ request: GateRequest) async -> GateVerdict { await waitForDecision(request, at: now()) }
}

/// The system's wall clock, for periods and lease expiry.
public struct SystemClock: TollgateClock {
    /// The system clock.
    public init() {}

    /// Now.
    public func now() -> Timestamp { WallClock.now() }
}

/// The gate's metrics.
struct QuotaGateMetrics: Sendable {
    let admitted = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "admitted")])
    let admittedUnreachable = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "admitted_unreachable")])
    let quotaExhausted = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "quota_exhausted")])
    let rateLimited = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "rate_limited")])
    let paymentRequired = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "payment_required")])
    let forbidden = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "forbidden")])
    let unreachable = Counter(label: QuotaGateMetricName.decisions, dimensions: [("verdict", "collector_unreachable")])
    let waited = Counter(label: QuotaGateMetricName.roundTrips)
    let leaseRequests = Counter(label: QuotaGateMetricName.leaseRequests)
    let leaseFailures = Counter(label: QuotaGateMetricName.leaseFailures)
    let leaseUnits = Counter(label: QuotaGateMetricName.leaseUnits)
    let updatesApplied = Counter(label: QuotaGateMetricName.updates, dimensions: [("result", "applied")])
    let updatesStale = Counter(label: QuotaGateMetricName.updates, dimensions: [("result", "stale")])

    func count(_ verdict: GateVerdict) {
        switch verdict {
        case .admit(let admission): (admission.unreachable ? admittedUnreachable : admitted).increment()
        case .refuse(let refusal):
            switch refusal.reason {
            case .quotaExhausted: quotaExhausted.increment()
            case .rateLimited: rateLimited.increment()
            case .paymentRequired: paymentRequired.increment()
            case .forbidden: forbidden.increment()
            case .collectorUnreachable: unreachable.increment()
            }
        }
    }

    func updates(applied: Bool) {
        (applied ? updatesApplied : updatesStale).increment()
    }
}

/// Metric names of the quota gate.
public enum QuotaGateMetricName {
    /// Counter of decisions, label `verdict`.
    public static let decisions = "tollgate_sidecar_quota_decisions_total"
    /// Counter of decisions that waited for a collector round trip.
    public static let roundTrips = "tollgate_sidecar_quota_round_trips_total"
    /// Counter of lease requests sent.
    public static let leaseRequests = "tollgate_sidecar_lease_requests_total"
    /// Counter of lease requests that failed (timeout, error reply).
    public static let leaseFailures = "tollgate_sidecar_lease_request_failures_total"
    /// Counter of units granted to this sidecar.
    public static let leaseUnits = "tollgate_sidecar_lease_units_granted_total"
    /// Counter of pushed updates, label `result` (`applied`, `stale`).
    public static let updates = "tollgate_sidecar_quota_updates_total"
}
