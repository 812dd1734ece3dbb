import NIOCore
import NIOHTTP1

/// One keep-alive HTTP/1.1 connection to the upstream, leased to one client request at a time.
///
/// Threading: lives on its channel's event loop, which is also the loop of every client channel
/// that leases it (the pool is per loop), so calls between the two sides are plain method calls.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private let pool: UpstreamPool
    private let readTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    /// The client request this connection serves; nil while idle in the pool.
    var owner: ProxyHandler?
    /// Whether the TCP connection is open.
    private(set) var isActive = false
    /// Requests sent over this connection: above zero means it was reused from the pool.
    var requestsSent = 0
    private var readHeld = false
    private var deadline: NIODeadline?
    private var timerScheduled = false

    init(pool: UpstreamPool, readTimeout: TimeAmount) {
        self.pool = pool
        self.readTimeout = readTimeout
    }

    /// Whether writes would be queued rather than sent (backpressure towards the client's reads).
    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.isActive = context.channel.isActive
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.isActive = true
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.isActive = false
        self.deadline = nil
        self.pool.connectionClosed(self)
        if let owner = self.owner {
            self.owner = nil
            owner.upstreamClosed(self)
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let owner = self.owner else {
            // An idle connection has nothing to say; whatever it sent cannot belong to a request.
            context.close(promise: nil)
            return
        }
        if self.deadline != nil { self.deadline = .now() + self.readTimeout }
        owner.upstreamReceived(self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.owner?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.owner?.upstreamBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Decoder errors and resets: the connection cannot carry on; channelInactive tells the owner.
        context.close(promise: nil)
    }

    /// Holds reads while the client cannot take more response bytes.
    func read(context: ChannelHandlerContext) {
        if let owner = self.owner, !owner.clientIsWritable {
            self.readHeld = true
        } else {
            context.read()
        }
    }

    /// Reads again if reads were held for backpressure.
    func resumeReads() {
        if self.readHeld, let context = self.context {
            self.readHeld = false
            context.read()
        }
    }

    /// Writes a request part, flushing when asked.
    func send(_ part: HTTPClientRequestPart, flush: Bool) {
        guard let context = self.context else { return }
        if flush {
            context.writeAndFlush(self.wrapOutboundOut(part), promise: nil)
        } else {
            context.write(self.wrapOutboundOut(part), promise: nil)
        }
    }

    /// Flushes written parts.
    func flush() {
        self.context?.flush()
    }

    /// Closes the connection; the owner (if any) is told through `upstreamClosed` unless detached first.
    func close() {
        self.context?.close(promise: nil)
    }

    /// Starts (or restarts) the read timeout: the upstream must send something within `readTimeout`.
    ///
    /// One scheduled task per connection at a time: a timer that fires early reschedules itself for the
    /// moved deadline, so a busy connection schedules about once per timeout period, not per request.
    func armReadTimeout() {
        self.deadline = .now() + self.readTimeout
        if !self.timerScheduled, let context = self.context {
            self.timerScheduled = true
            self.scheduleTimer(at: self.deadline!, eventLoop: context.eventLoop)
        }
    }

    /// Stops the read timeout (the response ended).
    func disarmReadTimeout() {
        self.deadline = nil
    }

    private func scheduleTimer(at deadline: NIODeadline, eventLoop: any EventLoop) {
        eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timerFired()
        }
    }

    private func timerFired() {
        guard let deadline = self.deadline, let context = self.context, self.isActive else {
            self.timerScheduled = false
            return
        }
        if deadline > .now() {
            self.scheduleTimer(at: deadline, eventLoop: context.eventLoop)
            return
        }
        self.timerScheduled = false
        self.deadline = nil
        if let owner = self.owner {
            self.owner = nil
            owner.upstreamTimedOut(self)
        }
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}
