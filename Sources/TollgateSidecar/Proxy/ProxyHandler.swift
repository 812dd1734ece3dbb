import NIOCore
import NIOHTTP1
import TollgateCore

/// Proxies the requests of one client connection to the upstream, one at a time (pipelined
/// requests wait in `pipelined`, see ProxyHandler+Pipelining.swift), and meters each call.
///
/// It works on bytes both ways: requests are read by `ProxyRequestReader` (heads parsed in place,
/// bodies handed on as slices), responses are the upstream's bytes with their head rewritten
/// (`UpstreamResponseHead`), or the proxy's own.
///
/// Threading: runs on the client channel's event loop; its upstream connections come from the same
/// loop's pool, so both sides call each other directly, without locks or hops. The only hop is the
/// first request of a key the resolver has not cached.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

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
    /// The last call's raw API key and its id (a hash of it, so it stays right whatever happens to the key).
    var lastKey: (raw: [UInt8], id: String)?

    // The current call. Kept in stored properties that are reset, not reallocated, per request.
    var callID: UInt64 = 0
    var inCall = false
    var requestPhase = RequestPhase.none
    var responsePhase = ResponsePhase.notStarted
    var requestEnded = false
    var closeAfterResponse = false
    var clientVersion = HTTPVersion.http1_1
    var upstream: UpstreamConnection?
    /// The request head to send upstream, written once the call is admitted.
    var upstreamHead: ByteBuffer?
    /// Body parts that arrived before an upstream connection was attached.
    var pendingParts: [ByteBuffer] = []
    /// The request is chunked: its body goes upstream chunked again.
    var requestChunked = false
    var isHEADRequest = false
    /// The response's chunked body is handed on as data only, framed by the proxy (HTTP/1.0
    /// clients, and paid calls, whose response is held and sent with a length).
    var dechunkingResponse = false
    /// The forwarded response's head, held until its first body part (see `upstreamReceived`).
    var responseHead: ByteBuffer?
    /// Storage kept for the next call's response head and upstream request head (see `takeOutBuffer`).
    var outScratch: ByteBuffer?
    var upstreamHeadScratch: ByteBuffer?
    var retried = false
    var readHeld = false
    var upstreamNeedsFlush = false
    var upstreamKeepAlive = true
    /// Set once the proxy decided to close the client connection: every later read is dropped.
    var isClosing = false
    /// Bytes of pipelined requests that arrived before the current call finished, not yet read;
    /// reads are held while there are any, so this holds at most about one socket read.
    var pipelined: ByteBuffer?
    var requestReader: ProxyRequestReader
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
    /// The call's `Host` and target, kept for `requestURI` (only a payment or a 402 needs it).
    var requestHost: String?
    var requestPath = ""
    /// The resource the call asks for, as x402 names it.
    var requestURI: String { "http://" + (self.requestHost ?? self.shared.upstreamHostHeader) + self.requestPath }
    /// The current call's x402 payment, when it carries one (see ProxyHandler+Payment.swift).
    var paid: PaidCall?

    init(shared: ProxyShared, loop: ProxyLoop) {
        self.shared = shared
        self.loop = loop
        let configuration = shared.configuration
        self.requestReader = ProxyRequestReader(
            maxFieldBytes: configuration.maxHeaderFieldBytes, maxListBytes: configuration.maxHeaderListBytes, keyHeader: configuration.keyHeader
        )
    }

    var clientIsWritable: Bool { self.context.channel.isWritable }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let ip = context.channel.remoteAddress?.ipAddress { self.clientIP = ip }
        if !self.loop.register(context.channel) { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.isClosing = true
        self.pipelined = nil
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
            } else {
                // Admitted but never answered: the units go back to the lease.
                self.refundLeasedUnits()
            }
            self.endCall()
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.isClosing else { return }
        var buffer = self.unwrapInboundIn(data)
        if self.pipelined != nil || (self.inCall && self.requestEnded) {
            self.keepPipelined(&buffer)
            return
        }
        self.consume(&buffer)
    }

    /// Reads requests from `buffer` and acts on them, until a request waits for its response
    /// (the rest is kept in `pipelined`) or the bytes run out.
    func consume(_ buffer: inout ByteBuffer) {
        while !self.isClosing {
            if self.inCall, self.requestEnded {
                if buffer.readableBytes > 0 { self.keepPipelined(&buffer) }
                return
            }
            let event: ProxyRequestReader.Event?
            do {
                event = try self.requestReader.next(&buffer)
            } catch {
                self.requestMalformed(error as? ProxyRequestReader.ReadError ?? .malformed)
                return
            }
            guard let event else { return }
            switch event {
            case .head(let head): self.requestHead(head)
            case .body(let body): self.requestBody(body)
            case .end: self.requestEnd()
            }
        }
    }

    private func keepPipelined(_ buffer: inout ByteBuffer) {
        if self.pipelined == nil {
            self.pipelined = buffer
        } else {
            self.pipelined!.writeBuffer(&buffer)
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
        if self.pipelined != nil {
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
        self.closeClient()
    }

    /// Gives the units the gate admitted the current call with back to the lease (it was not served).
    func refundLeasedUnits() {
        guard self.leasedUnits > 0, let gate = self.shared.gate else { return }
        gate.refund(keyID: self.keyID, feature: self.feature, leasedUnits: self.leasedUnits, at: self.startWall)
        self.leasedUnits = 0
    }

    /// A request the reader refused: answered 400 or 431 and never metered; the connection cannot
    /// be trusted afterwards, so it closes.
    func requestMalformed(_ error: ProxyRequestReader.ReadError) {
        self.pipelined = nil
        self.detachUpstream(reusable: false)
        guard self.responsePhase != .streaming else {
            self.closeClient()
            return
        }
        if self.inCall {
            // Admitted, but the request never reached the upstream whole: the units go back.
            self.refundLeasedUnits()
            self.abandonPaidCall()
            self.endCall()
        }
        if error == .headTooLarge {
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
