import NIOCore
import NIOHTTP1
import TollgateCore

/// Proxies the requests of one client connection to the upstream, one at a time (pipelined
/// requests wait in `pipelined`, see ProxyHandler+Pipelining.swift), and meters each call.
///
/// Threading: runs on the client channel's event loop; its upstream connections come from the same
/// loop's pool, so both sides call each other directly, without locks or hops. The only hop is the
/// first request of a key the resolver has not cached.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Where the request side of the current call is.
    enum RequestPhase: Equatable {
        /// No call.
        case none
        /// Waiting for the principal or an upstream connection; parts are buffered, reads held.
        case pending
        /// Parts go straight to the upstream.
        case forwarding
        /// The request ended and was sent; waiting for the response.
        case sent
        /// The proxy answered (or gave up on the upstream); parts are dropped until `.end`.
        case discarding
    }

    /// Where the response side of the current call is.
    enum ResponsePhase: Equatable {
        case notStarted, streaming, finished
    }

    let shared: ProxyShared
    let loop: ProxyLoop
    var context: ChannelHandlerContext!
    var clientIP = "unknown"
    private var anonymousKeyID: String?

    // The current call. Kept in stored properties that are reset, not reallocated, per request.
    var callID: UInt64 = 0
    var inCall = false
    var requestPhase = RequestPhase.none
    var responsePhase = ResponsePhase.notStarted
    var requestEnded = false
    var closeAfterResponse = false
    var clientVersion = HTTPVersion.http1_1
    var upstream: UpstreamConnection?
    var upstreamHead: HTTPRequestHead?
    var pendingParts: [HTTPClientRequestPart] = []
    var retried = false
    var readHeld = false
    var upstreamNeedsFlush = false
    var upstreamKeepAlive = true
    /// Set once the proxy decided to close the client connection: every later read is dropped.
    var isClosing = false
    /// Parts of pipelined requests that arrived before the current call finished; reads are held
    /// while there are any, so this holds at most what one socket read decoded into.
    var pipelined = CircularBuffer<HTTPServerRequestPart>()
    var replaying = false
    // Metering of the current call.
    var keyID = ""
    var feature = FeatureName.apiCall
    var idempotencyKey: String?
    var startTime = NIODeadline.uptimeNanoseconds(0)
    var startWall = Timestamp.epoch
    var requestBytes = 0
    var responseBytes = 0
    var statusCode = 0
    var unitsHeaderValues: [String] = []
    // The quota gate's answer for the current call.
    var plan: EffectivePlan?
    var leasedUnits: UInt64 = 0
    var rateLimitHeaders = GateLimits.none
    var requestURI = ""
    /// The current call's x402 payment, when it carries one (see ProxyHandler+Payment.swift).
    var paid: PaidCall?

    init(shared: ProxyShared, loop: ProxyLoop) {
        self.shared = shared
        self.loop = loop
    }

    var clientIsWritable: Bool { self.context.channel.isWritable }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let ip = context.channel.remoteAddress?.ipAddress { self.clientIP = ip }
        if !self.loop.register(context.channel) { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.isClosing = true
        self.pipelined.removeAll()
        self.loop.unregister(context.channel)
        if let upstream = self.upstream {
            // The exchange is cut short: the connection cannot be reused.
            self.upstream = nil
            upstream.owner = nil
            upstream.close()
        }
        if self.inCall {
            // The upstream answered before the client left: that call was served, so it is metered.
            self.abandonPaidCall()
            if self.responsePhase == .streaming {
                self.recordUsage(statusCode: self.statusCode)
            } else if self.leasedUnits > 0, let gate = self.shared.gate {
                // Admitted but never answered: the units go back to the lease.
                gate.refund(keyID: self.keyID, feature: self.feature, leasedUnits: self.leasedUnits, at: self.startWall)
                self.leasedUnits = 0
            }
            self.endCall()
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.isClosing else { return }
        let part = self.unwrapInboundIn(data)
        if (self.inCall && self.requestEnded) || !self.pipelined.isEmpty {
            self.pipelined.append(part)
            return
        }
        self.dispatch(part)
    }

    func dispatch(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head): self.requestHead(head)
        case .body(let buffer): self.requestBody(buffer)
        case .end: self.requestEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.upstreamNeedsFlush {
            self.upstreamNeedsFlush = false
            self.upstream?.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.upstream?.resumeReads() }
        context.fireChannelWritabilityChanged()
    }

    /// Holds reads while the request cannot go anywhere (no upstream yet, or it is not writable).
    func read(context: ChannelHandlerContext) {
        if !self.pipelined.isEmpty {
            self.readHeld = true
            return
        }
        switch self.requestPhase {
        case .pending:
            self.readHeld = true
            return
        case .forwarding:
            if let upstream = self.upstream, !upstream.isWritable {
                self.readHeld = true
                return
            }
        case .none, .sent, .discarding:
            break
        }
        context.read()
    }

    func resumeClientReads() {
        if self.readHeld {
            self.readHeld = false
            self.context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, !self.isClosing else {
            self.closeClient()
            return
        }
        // Malformed input is refused, never metered; the connection cannot be trusted afterwards.
        self.pipelined.removeAll()
        if self.inCall, self.requestEnded {
            // The bad bytes follow a complete request: finish that one, then close.
            self.closeAfterResponse = true
            return
        }
        self.detachUpstream(reusable: false)
        guard self.responsePhase != .streaming else {
            self.closeClient()
            return
        }
        if self.inCall { self.endCall() }
        if parserError == .headerOverflow {
            self.shared.metrics.countRefusal(.headerTooLarge)
            self.writeLocalResponse(.init(statusCode: 431), body: self.shared.responses.headersTooLarge, close: true)
        } else {
            self.shared.metrics.countRefusal(.malformed)
            self.writeLocalResponse(.badRequest, body: self.shared.responses.badRequest, close: true)
        }
    }

    // MARK: Request side

    private func requestHead(_ head: HTTPRequestHead) {
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
        self.responsePhase = .notStarted
        self.clientVersion = head.version
        self.closeAfterResponse = !head.isKeepAlive || head.version != .http1_1

        let scan = RequestHeaderScan(head.headers, keyHeader: self.shared.configuration.keyHeader)
        self.idempotencyKey = scan.idempotencyKey
        if let length = scan.contentLength, length > self.shared.configuration.maxRequestBodyBytes {
            self.refuse(.bodyTooLarge, status: .payloadTooLarge, body: self.shared.responses.bodyTooLarge, close: true)
            return
        }
        if let rawKey = scan.apiKey {
            let keyID = self.loop.keyID(for: rawKey)
            if let principal = self.shared.resolver.cached(keyID: keyID) {
                self.principalResolved(principal, head: head, scan: scan)
            } else {
                self.resolveSlowly(keyID: keyID, head: head, scan: scan)
            }
        } else if self.shared.configuration.anonymousPlan != nil {
            if self.anonymousKeyID == nil { self.anonymousKeyID = "anon:" + self.clientIP }
            self.keyID = self.anonymousKeyID!
            self.plan = nil
            self.forward(head, scan: scan)
        } else {
            self.refuse(.missingKey, status: .unauthorized, body: self.shared.responses.missingKey, close: false)
        }
    }

    private func principalResolved(_ principal: Principal, head: HTTPRequestHead, scan: RequestHeaderScan) {
        guard principal.isKnown else {
            self.refuse(.unknownKey, status: .unauthorized, body: self.shared.responses.unknownKey, close: false)
            return
        }
        self.keyID = principal.keyID
        self.plan = principal.effectivePlan
        self.forward(head, scan: scan)
    }

    /// The first request of a key the resolver has not cached: ask it, at most `keyResolveTimeout`.
    private func resolveSlowly(keyID: String, head: HTTPRequestHead, scan: RequestHeaderScan) {
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
    private func forward(_ head: HTTPRequestHead, scan: RequestHeaderScan) {
        self.feature = self.shared.configuration.routes.feature(forURI: head.uri)
        self.leasedUnits = 0
        self.rateLimitHeaders = .none
        if let gate = self.shared.gate, let plan = self.plan {
            self.requestURI = "http://" + (scan.host ?? self.shared.upstreamHostHeader) + head.uri
            let request = GateRequest(keyID: self.keyID, plan: plan, feature: self.feature)
            if let payment = scan.payment, self.shared.payments != nil {
                // Kept only for calls that carry a payment: a 402 may turn into a paid call.
                self.paid = PaidCall(version: payment.version, header: payment.value, feature: self.feature, head: head, scan: scan)
            }
            if let verdict = gate.decide(request, at: self.startWall) {
                guard self.admitted(verdict) else { return }
            } else {
                self.decideSlowly(gate, request, head: head, scan: scan)
                return
            }
        }
        self.proceed(head, scan: scan)
    }

    /// The call's key and feature have no lease here yet: wait for the collector (bounded by the gate).
    private func decideSlowly(_ gate: QuotaGate, _ request: GateRequest, head: HTTPRequestHead, scan: RequestHeaderScan) {
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
    func proceed(_ head: HTTPRequestHead, scan: RequestHeaderScan) {
        self.upstreamHead = self.makeUpstreamHead(head, scan: scan)
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

    private func attach(_ connection: UpstreamConnection) {
        self.upstream = connection
        connection.owner = self
        connection.requestsSent += 1
        self.upstreamKeepAlive = true
        connection.send(.head(self.upstreamHead!), flush: false)
        for part in self.pendingParts { connection.send(part, flush: false) }
        self.pendingParts.removeAll(keepingCapacity: true)
        if self.requestEnded {
            connection.send(.end(nil), flush: true)
            connection.armReadTimeout()
            self.requestPhase = .sent
        } else {
            connection.flush()
            self.requestPhase = .forwarding
        }
        if connection.isWritable { self.resumeClientReads() }
    }

    private func requestBody(_ buffer: ByteBuffer) {
        guard self.inCall else { return }
        self.requestBytes += buffer.readableBytes
        if self.requestBytes > self.shared.configuration.maxRequestBodyBytes {
            self.bodyTooLarge()
            return
        }
        switch self.requestPhase {
        case .pending:
            self.pendingParts.append(.body(.byteBuffer(buffer)))
        case .forwarding:
            self.upstream?.send(.body(.byteBuffer(buffer)), flush: false)
            self.upstreamNeedsFlush = true
        case .none, .sent, .discarding:
            break
        }
    }

    private func requestEnd() {
        self.requestEnded = true
        switch self.requestPhase {
        case .forwarding:
            self.upstreamNeedsFlush = false
            self.upstream?.send(.end(nil), flush: true)
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

    private func bodyTooLarge() {
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
        self.upstreamHead = nil
        self.pendingParts.removeAll(keepingCapacity: true)
        if !self.unitsHeaderValues.isEmpty { self.unitsHeaderValues.removeAll() }
    }
}

@available(*, unavailable)
extension ProxyHandler: Sendable {}
