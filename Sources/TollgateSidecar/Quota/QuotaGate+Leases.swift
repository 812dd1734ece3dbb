import TollgateCore
import TollgateWire

/// Talking to the collector: lease requests, their answers, returns.
///
/// Threading: requests run as tasks; answers are applied under the gate's lock, and the returns,
/// new requests and resumed callers they cause are carried out after it is released.
extension QuotaGate {
    func start(_ asks: [LeaseAsk]) {
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
        // Read before the request leaves: a change applied after this point may not be in the grant.
        let sentAtEpoch = lock.withLock { state.dropEpoch }
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
        granted(ask, result, at: clock.now(), sentAtEpoch: sentAtEpoch)
    }

    /// The lease request a key never seen should piggyback on its key lookup (period left to the
    /// collector), or nil before the uplink has its boot epoch.
    public func firstLeaseRequest(keyID: String, feature: FeatureName) -> Tollgate_V1_LeaseRequest? {
        let identity = holder()
        guard identity.bootEpoch != 0 else { return nil }
        var request = Tollgate_V1_LeaseRequest()
        request.sidecarID = identity.sidecarID
        request.bootEpoch = identity.bootEpoch
        request.keyID = keyID
        request.feature = feature.rawValue
        request.unitsWanted = configuration.initialRequest
        return request
    }

    /// Takes a grant that came with the key's lookup: the slot is set up as for a first call and
    /// the grant applied, so that call (and the next ones) decide locally.
    public func prime(_ request: GateRequest, with grant: Tollgate_V1_LeaseGrant, at now: Timestamp) {
        var asks: [LeaseAsk] = []
        let id = request.id
        let waiting = lock.withLock { state.prepare(request, at: now, asks: &asks) }
        guard waiting, let index = asks.firstIndex(where: { $0.keyID == request.keyID && $0.feature == request.feature }) else {
            // Nothing to wait for (the slot already holds units, or the feature is not leased): hand the units back.
            if grant.units > 0 {
                transport.send(.leaseReturn(leaseReturn(id, request.feature, grant.periodID, grant.units)))
            }
            if !asks.isEmpty { start(asks) }
            return
        }
        var ask = asks[index]
        guard grant.periodID == ask.periodID else {
            // The collector's period is not this sidecar's (a boundary): units back, ask as usual.
            if grant.units > 0 {
                transport.send(.leaseReturn(leaseReturn(id, request.feature, grant.periodID, grant.units)))
            }
            start(asks)
            return
        }
        asks.remove(at: index)
        if !asks.isEmpty { start(asks) }
        ask.units = max(ask.units, grant.units)
        granted(ask, .success(grant), at: now)
    }

    /// Applies the collector's answer to `ask`. `sentAtEpoch` is the gate's drop epoch when the
    /// request left (nil: the answer came with a lookup that could not have crossed a change).
    private func granted(_ ask: LeaseAsk, _ result: Result<Tollgate_V1_LeaseGrant, any Error>, at now: Timestamp, sentAtEpoch: UInt64? = nil) {
        var resumes: [(CheckedContinuation<GateVerdict, Never>, GateVerdict)] = []
        var asks: [LeaseAsk] = []
        var returns: [Tollgate_V1_LeaseReturn] = []
        var retry: LeaseAsk?
        var stale = false
        defer {
            if stale {
                // A key's state was dropped (its plan changed, say a limit lowered below what is
                // used) while this request was out: the grant may be cut from the old figures, and
                // the slot it was for may be gone, with a new one in its place. Its units go back
                // unused, and the request goes out again, so whatever waits for it hears an answer
                // made after the change (a new slot's own request may then be answered twice:
                // harmless units, cut from the new figures).
                metrics.staleGrants.increment()
                if case .success(let grant) = result, grant.units > 0 {
                    transport.send(.leaseReturn(leaseReturn(CompactKeyID(ask.keyID), ask.feature, grant.periodID, grant.units)))
                }
                start([ask])
            }
        }
        defer {
            if let retry {
                let delay = configuration.scarceRetry
                Task {
                    try? await Task.sleep(for: delay)
                    await self.perform(retry)
                }
            }
        }
        let id = CompactKeyID(ask.keyID)
        lock.withLock {
            if let sentAtEpoch, sentAtEpoch != state.dropEpoch {
                stale = true
                return
            }
            let oldest = state.oldestWaiter(id, ask.feature)
            enum Next { case missing, keepWaiting, answerWaiters }
            let next: Next = state.withSlot(id, ask.feature) { slot, period -> Next in
                guard period.id == ask.periodID else { return .missing }
                switch result {
                case .success(let grant):
                    metrics.leaseUnits.increment(by: Int(clamping: grant.units))
                    slot.unleased = grant.remainingUnleased
                    slot.credits = grant.credits
                    slot.figuresKnown = true
                    slot.figuresAt = now
                    slot.spentSinceFigures = 0
                    slot.unreachable = false
                    // `outstanding` counts only other holders' units: this sidecar's own unsettled
                    // units must not make it wait for itself.
                    if grant.units == 0, ask.units > 0, grant.outstanding > 0,
                       let oldest, ContinuousClock.now - oldest.since < configuration.requestTimeout {
                        // Others hold what is left, and may hand it back: keep the callers waiting and
                        // ask again shortly (the request stays pending, so new callers wait too).
                        return .keepWaiting
                    }
                    if grant.units > 0 {
                        slot.balance.add(units: grant.units, expiresAt: Timestamp(milliseconds: grant.expiresAtUnixMs))
                        slot.exhausted = false
                        slot.nextRequest = grant.units >= ask.units ? min(configuration.maxRequest, ask.units * 2) : max(1, grant.units)
                    } else {
                        slot.balance.requestFinished()
                        // Exhausted only when nobody else holds units either (or callers already
                        // waited the full timeout for them): units another sidecar holds may come
                        // back, and the next call here asks again and waits for them.
                        if ask.units > 0, grant.outstanding == 0 || oldest != nil {
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
                return .answerWaiters
            } ?? .missing
            switch next {
            case .missing:
                // The slot rolled over or was dropped meanwhile: hand the units straight back.
                if case .success(let grant) = result, grant.units > 0 {
                    returns.append(leaseReturn(id, ask.feature, ask.periodID, grant.units))
                }
                return
            case .keepWaiting:
                if case .success(let grant) = result, grant.holders > 0, let position = state.position(of: id) {
                    state.keys[position].bucketShare = UInt32(clamping: grant.holders)
                }
                retry = ask
                return
            case .answerWaiters:
                if case .success(let grant) = result, grant.holders > 0, let position = state.position(of: id) {
                    state.keys[position].bucketShare = UInt32(clamping: grant.holders)
                }
            }
            for waiter in state.takeWaiters(id, ask.feature) {
                if let verdict = state.decide(waiter.request, at: now, asks: &asks) {
                    resumes.append((waiter.continuation, verdict))
                } else {
                    state.park(waiter, id: id)
                }
            }
        }
        start(asks)
        for giveBack in returns { transport.send(.leaseReturn(giveBack)) }
        for (continuation, verdict) in resumes { continuation.resume(returning: verdict) }
    }

    /// Removes a key's state; returns the lease returns to send. Its waiters ask again from scratch
    /// (their pending requests find the slot gone and hand their units back).
    func dropLocked(_ id: CompactKeyID) -> [Tollgate_V1_LeaseReturn] {
        state.forgetPushedExhaustion(id)
        guard let position = state.position(of: id) else { return [] }
        state.dropEpoch &+= 1
        var returns: [Tollgate_V1_LeaseReturn] = []
        var features: [FeatureName] = []
        state.forEachSlot(at: position) { feature, periodID, slot in
            features.append(feature)
            let unused = slot.balance.returnAll()
            if unused > 0 { returns.append(leaseReturn(id, feature, periodID, unused)) }
        }
        state.leave(id)
        for feature in features {
            for waiter in state.takeWaiters(id, feature) {
                let request = waiter.request
                let continuation = waiter.continuation
                Task { continuation.resume(returning: await self.waitForDecision(request, at: self.clock.now())) }
            }
        }
        return returns
    }

    func leaseReturn(_ id: CompactKeyID, _ feature: FeatureName, _ periodID: String, _ units: UInt64) -> Tollgate_V1_LeaseReturn {
        let identity = holder()
        var giveBack = Tollgate_V1_LeaseReturn()
        giveBack.sidecarID = identity.sidecarID
        giveBack.bootEpoch = identity.bootEpoch
        giveBack.keyID = id.string
        giveBack.feature = feature.rawValue
        giveBack.periodID = periodID
        giveBack.unusedUnits = units
        return giveBack
    }
}
