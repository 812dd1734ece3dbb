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
    var anonymousKeyID: String?

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
    var plan: GatePlan?
    /// The last call's question to the gate, reused while key, plan and feature stay the same (the
    /// calls of one connection usually share them), so the key id is compacted once.
    var gateRequest: GateRequest?
    var leasedUnits: UInt64 = 0
    var rateLimitHeaders = GateLimits.none
    /// Writes the `RateLimit` fields, keeping the policy text while it stays the same.
    var rateLimitFields = RateLimitFields()
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
}

@available(*, unavailable)
extension ProxyHandler: Sendable {}
