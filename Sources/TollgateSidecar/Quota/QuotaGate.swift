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
    /// Sends `body` and calls `completion` with the reply or the failure, at most `timeout` later,
    /// on a thread of the transport's choosing (it must be quick and must not block).
    func request(
        _ body: Tollgate_V1_Envelope.OneOf_Body, timeout: Duration,
        completion: @escaping @Sendable (Result<Tollgate_V1_Envelope, any Error>) -> Void
    )
}

extension LeaseTransport {
    /// Through the async `request`, on a task: for transports without a thread of their own.
    public func request(
        _ body: Tollgate_V1_Envelope.OneOf_Body, timeout: Duration,
        completion: @escaping @Sendable (Result<Tollgate_V1_Envelope, any Error>) -> Void
    ) {
        Task {
            do {
                completion(.success(try await self.request(body, timeout: timeout)))
            } catch {
                completion(.failure(error))
            }
        }
    }
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
/// Threading: safe from any thread. `decide` is one lock, one probe of a compact key table and a
/// little arithmetic, for the event loops; it never blocks on I/O and allocates nothing for a
/// cached key (the verdict carries numbers; header strings are built where a response is written).
/// `waitForDecision` is the slow path. Lease requests run as tasks and their answers are applied
/// under the same lock. Decision counts are kept under the lock and reported to swift-metrics in
/// batches (`flushMetrics`, called by `QuotaService` every 100 ms and every few hundred decisions).
///
/// ```swift
/// let gate = QuotaGate(transport: channel, holder: { ("sc-1", epoch) })
/// let request = GateRequest(keyID: id, plan: plan, feature: .apiCall)
/// let verdict = gate.decide(request) ?? await gate.waitForDecision(request)
/// ```
public final class QuotaGate: @unchecked Sendable {
    // @unchecked Sendable: `state` is only touched under `lock`; everything else is immutable.

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
        /// Stop spending a lease this long before its expiry, so a sidecar whose clock lags the
        /// collector's never spends units the collector has already reclaimed. Kept to the
        /// millisecond, at most about 49 days (`LeaseBalance.expiryMarginNanoseconds(_:)`).
        public var leaseExpiryMargin: Duration = .seconds(1) {
            didSet { leaseExpiryMarginNanoseconds = LeaseBalance.expiryMarginNanoseconds(leaseExpiryMargin) }
        }
        /// `leaseExpiryMargin` as the lease balances take it.
        public private(set) var leaseExpiryMarginNanoseconds: Int64 = LeaseBalance.expiryMarginNanoseconds(.seconds(1))

        /// The defaults.
        public init() {}
    }

    let configuration: Configuration
    let transport: any LeaseTransport
    let holder: @Sendable () -> (sidecarID: String, bootEpoch: UInt64)
    let clock: any TollgateClock
    let metrics = QuotaGateMetrics()
    /// The key table this gate keeps its state in, shared with the key directory.
    let cache: KeyCache
    /// The cache's lock.
    var lock: NSLock { cache.lock }
    /// Everything mutable; only under `lock`.
    var state: GateState {
        _read { yield cache.state }
        _modify { yield &cache.state }
    }

    /// A gate that leases through `transport` as `holder` (the sidecar id and boot epoch its usage
    /// batches carry), keeping its state in `cache` (pass the key directory's, so both share one
    /// table; one gate per cache).
    public init(
        configuration: Configuration = Configuration(), transport: any LeaseTransport,
        clock: any TollgateClock = SystemClock(), cache: KeyCache = KeyCache(),
        holder: @escaping @Sendable () -> (sidecarID: String, bootEpoch: UInt64)
    ) {
        self.configuration = configuration
        self.transport = transport
        self.clock = clock
        self.holder = holder
        self.cache = cache
        cache.lock.withLock { cache.state.configuration = configuration }
    }

    /// The current time on the gate's clock.
    public func now() -> Timestamp { clock.now() }

    /// Decides at once, or returns nil when the call must wait for the collector (then call `waitForDecision`).
    public func decide(_ request: GateRequest, at now: Timestamp) -> GateVerdict? {
        var asks: [LeaseAsk] = []
        let lock = cache.lock
        lock.lock()
        var counts: DecisionCounts?
        let verdict = cache.state.decide(request, at: now, asks: &asks, due: &counts)
        lock.unlock()
        if !asks.isEmpty { start(asks) }
        if let counts { metrics.report(counts) }
        return verdict
    }

    /// Decides, waiting for the collector's answer if need be (at most about `requestTimeout`).
    public func waitForDecision(_ request: GateRequest, at now: Timestamp) async -> GateVerdict {
        metrics.waited.increment()
        return await withCheckedContinuation { continuation in
            var asks: [LeaseAsk] = []
            let immediate: GateVerdict? = lock.withLock {
                let verdict = state.decide(request, at: now, asks: &asks)
                if verdict == nil { state.park(QuotaWaiter(request: request, continuation: continuation), id: request.id) }
                return verdict
            }
            start(asks)
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// Gives back units of an admitted call that was not served after all (the upstream was never
    /// reached), so they are not lost until the lease expires.
    public func refund(keyID: String, feature: FeatureName, leasedUnits: UInt64, at now: Timestamp) {
        guard leasedUnits > 0 else { return }
        let id = CompactKeyID(keyID)
        lock.withLock {
            state.withSlot(id, feature) { slot, period in
                guard period.bounds.contains(now) else { return }
                slot.balance.add(units: leasedUnits, expiresAt: slot.balance.leases.first?.expiresAt ?? now)
            }
        }
    }

    /// What a call would be told now, without spending anything (the local `check` API). Nil when
    /// the gate has no figures yet for the key and feature.
    public func balance(keyID: String, feature: FeatureName, at now: Timestamp) -> UInt64? {
        let id = CompactKeyID(keyID)
        return lock.withLock {
            state.withSlot(id, feature) { slot, period -> UInt64? in
                guard period.bounds.contains(now), slot.figuresKnown else { return nil }
                let margin = configuration.leaseExpiryMarginNanoseconds
                return GateState.saturatingAdd(slot.unleased, slot.balance.available(at: now, expiryMarginNanoseconds: margin))
            } ?? nil
        }
    }

    /// Reports the decisions counted since the last report to swift-metrics. `QuotaService` calls
    /// it every 100 ms; `decide` also reports every few hundred decisions.
    public func flushMetrics() {
        let counts = lock.withLock { state.counts.take() }
        metrics.report(counts)
    }

    // MARK: Updates from the collector

    /// Applies a pushed update; returns false when it was stale and dropped.
    @discardableResult
    public func apply(_ update: Tollgate_V1_QuotaUpdate, at now: Timestamp) -> Bool {
        var returns: [Tollgate_V1_LeaseReturn] = []
        let idle = configuration.idleBeforeReturn.saturatingNanoseconds
        let applied: Bool = lock.withLock {
            let targets: [CompactKeyID]
            if update.keyID.isEmpty {
                // Fleet-wide: a plan changed; every key on it starts afresh.
                targets = state.keys(onPlan: update.plan.isEmpty ? nil : update.plan)
            } else {
                let id = CompactKeyID(update.keyID)
                guard let position = state.position(of: id) else { return true }
                if update.version < state.keys[position].version { return false }
                targets = [id]
            }
            for id in targets {
                switch update.kind {
                case .exhausted:
                    // Nothing is left to lease: units this sidecar holds but is not using go back,
                    // so a sidecar that still has callers can have them.
                    let feature = FeatureName(update.feature)
                    let waiting = state.hasWaiters(id, feature)
                    state.withSlot(id, feature) { slot, period in
                        guard period.id == update.periodID else { return }
                        slot.unleased = 0
                        if !waiting, slot.isIdle(forNanoseconds: idle) {
                            let unused = slot.balance.returnAll()
                            if unused > 0 { returns.append(leaseReturn(id, feature, period.id, unused)) }
                        }
                    }
                case .credited:
                    state.pushedExhaustion[PushedExhaustion(id: id, feature: FeatureName(update.feature))] = nil
                    state.withSlot(id, FeatureName(update.feature)) { slot, _ in
                        slot.exhausted = false
                        slot.recheckAt = .min
                    }
                    if update.bucketCreditNano > 0 {
                        state.creditBucket(id, tokens: UInt64(update.bucketCreditNano) / UInt64(TokenBucket.nanoTokensPerToken), at: now)
                    }
                case .planChanged, .keyRevoked, .keyAdded:
                    returns += dropLocked(id)
                    // What the change left with nothing starts exhausted (the collector read it
                    // in the same Redis trip as the change).
                    for spent in update.exhausted where update.kind == .planChanged && !update.keyID.isEmpty {
                        state.pushedExhaustion[PushedExhaustion(id: id, feature: FeatureName(spent.feature))] = spent.periodID
                    }
                case .periodRolled, .unspecified, .UNRECOGNIZED:
                    break
                }
                if let position = state.position(of: id), state.keys[position].version < update.version {
                    state.keys[position].version = update.version
                }
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
            state.keys(onPlan: nil).flatMap { dropLocked($0) }
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
            for position in state.keys.entries.indices {
                let id = state.keys.entries[position].id
                state.forEachSlot(at: position) { feature, periodID, slot in
                    guard !slot.balance.isEmpty else { return }
                    let unused = slot.balance.expire(at: now, expiryMarginNanoseconds: configuration.leaseExpiryMarginNanoseconds)
                    if unused > 0 { returns.append(leaseReturn(id, feature, periodID, unused)) }
                }
            }
        }
        for giveBack in returns { transport.send(.leaseReturn(giveBack)) }
    }

    /// Keys cached, for metrics and tests.
    public var cachedKeys: Int { lock.withLock { state.gateKeys } }
}

extension QuotaGate {
    /// Decides at the gate's clock's current time.
    public func decide(_ request: GateRequest) -> GateVerdict? { decide(request, at: now()) }

    /// Waits for a decision at the gate's clock's current time.
    public func waitForDecision(_ request: GateRequest) async -> GateVerdict { await waitForDecision(request, at: now()) }
}

/// The system's wall clock as the gate reads it, for periods and lease expiry.
///
/// On Linux it is `CLOCK_REALTIME_COARSE`: a few nanoseconds to read instead of a few tens, at a
/// resolution of one kernel tick (1 to 4 ms), which is far inside what the gate tolerates of clocks
/// (it stops spending a lease a second before its expiry). A period rolls over up to one tick late.
/// The proxy decides at each call's own start time, which it reads once for metering.
public struct SystemClock: TollgateClock {
    /// The system clock.
    public init() {}

    /// Now, to the last kernel tick.
    public func now() -> Timestamp {
        #if os(Linux)
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &spec)
        return Timestamp(nanosecondsSinceEpoch: Int64(spec.tv_sec) &* 1_000_000_000 &+ Int64(spec.tv_nsec))
        #else
        return WallClock.now()
        #endif
    }
}
