import NIOCore

/// One keep-alive HTTP/1.1 connection to the upstream, leased to one client request at a time.
///
/// It speaks bytes, not HTTP parts: the owner writes the request head it built
/// (`writeUpstreamRequestHead`) and the body as it comes; responses are read by
/// `UpstreamResponseReader`, which hands the owner the parsed head and body slices to forward.
///
/// Threading: lives on its channel's event loop, which is also the loop of every client channel
/// that leases it (the pool is per loop), so calls between the two sides are plain method calls.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

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
    private var reader: UpstreamResponseReader
    /// The request body being sent is chunked: each part is framed as a chunk.
    private var chunkedBody = false

    init(pool: UpstreamPool, readTimeout: TimeAmount, maxHeadBytes: Int) {
        self.pool = pool
        self.readTimeout = readTimeout
        self.reader = UpstreamResponseReader(maxHeadBytes: maxHeadBytes)
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
        if self.reader.endsAtClose, let owner = self.owner {
            // A body delimited by the connection's close: the close is its end.
            self.reader.expectNothing()
            owner.upstreamReceived(.end)
        }
        if let owner = self.owner {
            self.owner = nil
            owner.upstreamClosed(self)
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.deadline != nil { self.deadline = .now() + self.readTimeout }
        var buffer = self.unwrapInboundIn(data)
        while true {
            let event: UpstreamResponseReader.Event?
            do {
                event = try self.reader.next(&buffer)
            } catch {
                // Malformed, too large, or not asked for: the connection cannot carry on; channelInactive tells the owner.
                context.close(promise: nil)
                return
            }
            guard let event else { return }
            guard let owner = self.owner else {
                // An idle connection has nothing to say; whatever it sent cannot belong to a request.
                context.close(promise: nil)
                return
            }
            owner.upstreamReceived(event)
            if case .end = event, buffer.readableBytes > 0 {
                // More than the response: nothing more can be trusted on this connection.
                context.close(promise: nil)
                return
            }
        }
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

    /// Writes a request's head (not flushed) and expects its response: none of a body if it is a
    /// HEAD; `dechunk` to be handed only the data of a chunked response body.
    func sendHead(_ head: ByteBuffer, chunkedBody: Bool, isHEAD: Bool, dechunk: Bool) {
        guard let context = self.context else { return }
        self.chunkedBody = chunkedBody
        self.reader.expectResponse(toHEAD: isHEAD, dechunk: dechunk)
        context.write(self.wrapOutboundOut(head), promise: nil)
    }

    /// Writes a part of the request body (not flushed), as a chunk if the body is chunked.
    func sendBody(_ buffer: ByteBuffer) {
        guard let context = self.context, buffer.readableBytes > 0 else { return }
        if self.chunkedBody {
            var size = context.channel.allocator.buffer(capacity: 20)
            size.writeString(String(buffer.readableBytes, radix: 16))
            size.writeStaticString("\r\n")
            context.write(self.wrapOutboundOut(size), promise: nil)
            context.write(self.wrapOutboundOut(buffer), promise: nil)
            context.write(self.wrapOutboundOut(Self.crlf), promise: nil)
        } else {
            context.write(self.wrapOutboundOut(buffer), promise: nil)
        }
    }

    /// Ends the request (the last chunk of a chunked body) and flushes.
    func sendEnd() {
        guard let context = self.context else { return }
        if self.chunkedBody { context.write(self.wrapOutboundOut(Self.lastChunk), promise: nil) }
        context.flush()
    }

    private static let crlf = ByteBuffer(string: "\r\n")
    private static let lastChunk = ByteBuffer(string: "0\r\n\r\n")

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
