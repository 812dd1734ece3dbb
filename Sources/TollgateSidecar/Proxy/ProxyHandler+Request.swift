import NIOCore
import NIOHTTP1
import TollgateCore

/// The request side of a proxied call: the head (principal, quota gate), the body (with its size
/// limit), the end, and the upstream connection the call is forwarded on.
extension ProxyHandler {
    func requestHead(_ head: ProxyRequestHead) {
        self.callID &+= 1
        self.inCall = true
        self.shared.metrics.inFlight.increment()
        self.startTime = .now()
        self.startWall = WallClock.now()
        self.requestEnded = false
        self.requestBytes = 0
        self.responseBytes = 0
        self.statusCode = 0
        self.retried = false
        self.paid = nil
        self.responseHead = nil
        self.responsePhase = .notStarted
        self.clientVersion = head.version
        self.closeAfterResponse = !head.isKeepAlive || head.version != .http1_1
        self.isHEADRequest = head.method == .HEAD

        let scan = head.scan
        self.idempotencyKey = scan.idempotencyKey
        self.requestChunked = scan.chunked
        if let length = head.contentLength, length > self.shared.configuration.maxRequestBodyBytes {
            self.refuse(.bodyTooLarge, status: .payloadTooLarge, body: self.shared.responses.bodyTooLarge, close: true)
            return
        }
        let keyID: String
        if scan.apiKeyRange != nil {
            // A connection's calls usually carry one key: its id is kept for the next call.
            if let last = self.lastKey, head.apiKeyEquals(last.raw) {
                keyID = last.id
            } else {
                let rawKey = head.apiKey!
                keyID = self.loop.keyID(for: rawKey)
                self.lastKey = (Array(rawKey.utf8), keyID)
            }
        } else if let plan = self.shared.configuration.anonymousPlan {
            // No key: the caller is its client address on the anonymous plan, resolved, limited and
            // counted like a key (the collector answers for the id from the plan it names).
            if self.anonymousKeyID == nil { self.anonymousKeyID = AnonymousKeyID.make(plan: plan, clientAddress: self.clientIP) }
            keyID = self.anonymousKeyID!
        } else {
            self.refuse(.missingKey, status: .unauthorized, body: self.shared.responses.missingKey, close: false)
            return
        }
        if let principal = self.shared.resolver.cached(keyID: keyID) {
            self.principalResolved(principal, head: head, scan: scan)
        } else {
            self.resolveSlowly(keyID: keyID, head: head, scan: scan)
        }
    }

    func principalResolved(_ principal: Principal, head: ProxyRequestHead, scan: RequestHeaderScan) {
        guard principal.isKnown else {
            self.refuse(.unknownKey, status: .unauthorized, body: self.shared.responses.unknownKey, close: false)
            return
        }
        self.keyID = principal.keyID
        self.plan = principal.gatePlan
        self.forward(head, scan: scan)
    }

    /// The first request of a key the resolver has not cached: ask it, at most `keyResolveTimeout`.
    func resolveSlowly(keyID: String, head: ProxyRequestHead, scan: RequestHeaderScan) {
        self.requestPhase = .pending
        let callID = self.callID
        let eventLoop = self.context.eventLoop
        let resolver = self.shared.resolver
        let promise = eventLoop.makePromise(of: Principal?.self)
        let feature = self.shared.configuration.routes.feature(forURI: head.uri)
        promise.completeWithTask { await resolver.resolve(keyID: keyID, feature: feature) }
        let timeout = eventLoop.assumeIsolated().scheduleTask(in: self.shared.configuration.keyResolveTimeout) {
            guard self.inCall, self.callID == callID, self.requestPhase == .pending else { return }
            self.refuse(.keyLookupTimeout, status: .serviceUnavailable, body: self.shared.responses.keyLookupTimeout, close: false)
        }
        promise.futureResult.assumeIsolated().whenSuccess { principal in
            timeout.cancel()
            guard self.inCall, self.callID == callID, self.requestPhase == .pending else { return }
            guard let principal else {
                self.refuse(.keyLookupTimeout, status: .serviceUnavailable, body: self.shared.responses.keyLookupTimeout, close: false)
                return
            }
            self.principalResolved(principal, head: head, scan: scan)
        }
    }

    /// Sends the request to an idle upstream connection, or opens one.
    func forward(_ head: ProxyRequestHead, scan: RequestHeaderScan) {
        self.feature = self.shared.configuration.routes.feature(forURI: head.uri)
        self.leasedUnits = 0
        self.rateLimitHeaders = .none
        if let gate = self.shared.gate, let plan = self.plan {
            self.requestHost = scan.host
            self.requestPath = head.uri
            if let payment = scan.payment, self.shared.payments != nil {
                // Kept only for calls that carry a payment: a 402 may turn into a paid call.
                let paid = PaidCall(version: payment.version, header: payment.value, feature: self.feature, head: head, scan: scan)
                self.paid = paid
                if paid.identifier != nil {
                    // A retry of a paid call is answered before the gate: it spends nothing.
                    self.lookUpPaymentIdentifier { self.decide(gate, plan, head: head, scan: scan) }
                    return
                }
            }
            self.decide(gate, plan, head: head, scan: scan)
            return
        }
        self.proceed(head, scan: scan)
    }

    /// Asks the quota gate, then goes on to the upstream if it admits the call.
    func decide(_ gate: QuotaGate, _ plan: GatePlan, head: ProxyRequestHead, scan: RequestHeaderScan) {
        let request = self.reuseGateRequest(plan)
        guard let verdict = gate.decide(request, at: self.startWall) else {
            self.decideSlowly(gate, request, head: head, scan: scan)
            return
        }
        guard self.admitted(verdict) else { return }
        self.proceed(head, scan: scan)
    }

    /// The question to the gate for this call: the last one when key, plan and feature are the same.
    func reuseGateRequest(_ plan: GatePlan) -> GateRequest {
        if let last = self.gateRequest, last.plan === plan, last.feature == self.feature, last.keyID == self.keyID { return last }
        let request = GateRequest(keyID: self.keyID, plan: plan, feature: self.feature)
        self.gateRequest = request
        return request
    }

    /// The call's key and feature have no lease here yet: wait for the collector (bounded by the gate).
    func decideSlowly(_ gate: QuotaGate, _ request: GateRequest, head: ProxyRequestHead, scan: RequestHeaderScan) {
        self.requestPhase = .pending
        let callID = self.callID
        let at = self.startWall
        let promise = self.context.eventLoop.makePromise(of: GateVerdict.self)
        promise.completeWithTask { await gate.waitForDecision(request, at: at) }
        promise.futureResult.assumeIsolated().whenSuccess { verdict in
            guard self.inCall, self.callID == callID, self.requestPhase == .pending else {
                // The client left meanwhile: the units were never used.
                if case .admit(let admission) = verdict {
                    gate.refund(keyID: request.keyID, feature: request.feature, leasedUnits: admission.leasedUnits, at: at)
                }
                return
            }
            guard self.admitted(verdict) else { return }
            self.proceed(head, scan: scan)
        }
    }

    /// Sends the request upstream once the gate admitted it.
    func proceed(_ head: ProxyRequestHead, scan: RequestHeaderScan) {
        // The last call's head buffer again (written long since, so no allocation), or a new one.
        var bytes = self.reuse(&self.upstreamHeadScratch, capacity: 256 + head.bytes.readableBytes)
        bytes.writeUpstreamRequestHead(head, clientIP: self.clientIP, defaultHost: self.shared.upstreamHostHeader)
        self.upstreamHead = bytes
        if let connection = self.loop.pool.takeIdle() {
            self.attach(connection)
        } else {
            self.connectUpstream()
        }
    }

    func connectUpstream() {
        self.requestPhase = .pending
        let callID = self.callID
        self.loop.pool.connect().assumeIsolated().whenComplete { result in
            let current = self.inCall && self.callID == callID && self.requestPhase == .pending && self.upstream == nil
            switch result {
            case .success(let connection):
                if current { self.attach(connection) } else { self.loop.pool.release(connection) }
            case .failure:
                guard current else { return }
                self.shared.metrics.upstreamConnectErrors.increment()
                self.respondUpstreamError(.badGateway, body: self.shared.responses.upstreamUnavailable)
            }
        }
    }

    func attach(_ connection: UpstreamConnection) {
        self.upstream = connection
        connection.owner = self
        connection.requestsSent += 1
        self.upstreamKeepAlive = true
        self.dechunkingResponse = self.clientVersion != .http1_1 || self.isBufferingPaidCall
        connection.sendHead(self.upstreamHead!, chunkedBody: self.requestChunked, isHEAD: self.isHEADRequest, dechunk: self.dechunkingResponse)
        for part in self.pendingParts { connection.sendBody(part) }
        self.pendingParts.removeAll(keepingCapacity: true)
        if self.requestEnded {
            connection.sendEnd()
            connection.armReadTimeout()
            self.requestPhase = .sent
        } else {
            connection.flush()
            self.requestPhase = .forwarding
        }
        if connection.isWritable { self.resumeClientReads() }
    }

    func requestBody(_ buffer: ByteBuffer) {
        guard self.inCall else { return }
        self.requestBytes += buffer.readableBytes
        if self.requestBytes > self.shared.configuration.maxRequestBodyBytes {
            self.bodyTooLarge()
            return
        }
        switch self.requestPhase {
        case .pending:
            self.pendingParts.append(buffer)
        case .forwarding:
            self.upstream?.sendBody(buffer)
            self.upstreamNeedsFlush = true
        case .none, .sent, .discarding:
            break
        }
    }

    func requestEnd() {
        self.requestEnded = true
        switch self.requestPhase {
        case .forwarding:
            self.upstreamNeedsFlush = false
            self.upstream?.sendEnd()
            self.upstream?.armReadTimeout()
            self.requestPhase = .sent
        case .discarding:
            if self.responsePhase == .finished {
                self.endCall()
                if self.closeAfterResponse { self.closeClient() } else { self.replayPipelined() }
            }
        case .pending, .none, .sent:
            break
        }
    }

    func bodyTooLarge() {
        if self.requestPhase == .discarding || self.responsePhase == .streaming {
            // Too much to drain, or too late to answer: give up on the connection.
            self.detachUpstream(reusable: false)
            self.closeClient()
            return
        }
        // A chunked body that outgrew the limit: refused by the proxy, not metered; the upstream
        // connection saw a partial request and cannot be reused.
        self.detachUpstream(reusable: false)
        self.refuse(.bodyTooLarge, status: .payloadTooLarge, body: self.shared.responses.bodyTooLarge, close: true)
    }

    /// Drops the link to the upstream connection; closes it unless it finished a clean exchange.
    func detachUpstream(reusable: Bool) {
        guard let connection = self.upstream else { return }
        self.upstream = nil
        if reusable {
            self.loop.pool.release(connection)
        } else {
            connection.owner = nil
            connection.close()
        }
    }

    /// Closes the client connection now (what is queued may be lost).
    func closeClient() {
        self.isClosing = true
        self.context.close(promise: nil)
    }

    /// Resets the per-call state once both the request and the response are done; the caller then
    /// writes what ends the response and calls `replayPipelined()`, in that order.
    func endCall() {
        guard self.inCall else { return }
        self.inCall = false
        self.shared.metrics.inFlight.decrement()
        self.requestPhase = .none
        self.responsePhase = .notStarted
        if let head = self.upstreamHead, head.capacity <= Self.keptScratchBytes { self.upstreamHeadScratch = head }
        self.upstreamHead = nil
        self.pendingParts.removeAll(keepingCapacity: true)
        if !self.unitsHeaderValues.isEmpty { self.unitsHeaderValues.removeAll() }
    }
}
