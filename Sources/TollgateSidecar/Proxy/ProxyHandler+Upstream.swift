import NIOCore
import NIOHTTP1
import TollgateCore

extension ProxyHandler {
    // MARK: Upstream events (called by UpstreamConnection on the same loop)

    func upstreamReceived(_ event: UpstreamResponseReader.Event) {
        switch event {
        case .informational(let head):
            // 100 Continue and friends pass through; 101 cannot happen since Upgrade is stripped.
            guard head.status != 101 else {
                self.detachUpstream(reusable: false)
                self.upstreamFailed(kind: .upstreamClosed)
                return
            }
            var out = self.takeOutBuffer(capacity: head.bytes.readableBytes + 2)
            out.writeResponseHead(head, http10: self.clientVersion != .http1_1, keepFraming: false)
            out.writeStaticString("\r\n")
            self.writeOut(out)
            self.context.flush()
        case .head(let head):
            self.statusCode = head.status
            self.upstreamKeepAlive = head.keepAlive
            self.unitsHeaderValues = head.units
            if !self.requestEnded || self.requestPhase == .discarding { self.closeAfterResponse = true }
            self.shared.metrics.countResponse(StatusClass(statusCode: self.statusCode) ?? .serverError)
            if self.isBufferingPaidCall {
                // Held back until the payment is settled (or released, for a failed call).
                self.paid?.responseHead = head
                return
            }
            // A body that ends with the upstream's close (or, for HTTP/1.0, one the proxy
            // dechunks) ends with the client's close too.
            if head.framing == .close || (head.framing == .chunked && self.dechunkingResponse) { self.closeAfterResponse = true }
            self.responsePhase = .streaming
            var coalesced = 0
            if case .length(let length) = head.framing, length <= Self.coalescedBodyBytes { coalesced = length }
            var out = self.takeOutBuffer(capacity: head.bytes.readableBytes + 160 + coalesced)
            out.writeResponseHead(head, http10: self.clientVersion != .http1_1, keepFraming: !(self.dechunkingResponse && head.framing == .chunked))
            if self.closeAfterResponse, self.clientVersion == .http1_1 { out.writeStaticString("connection: close\r\n") }
            if !self.rateLimitHeaders.isEmpty, let request = self.gateRequest { self.rateLimitFields.write(self.rateLimitHeaders, for: request, into: &out) }
            out.writeStaticString("\r\n")
            // Held until the body's first part: a small one is sent in the same buffer (one write).
            self.responseHead = out
        case .body(var buffer, let dataBytes):
            self.responseBytes += dataBytes
            if self.isBufferingPaidCall {
                if !self.bufferPaid(buffer) {
                    self.detachUpstream(reusable: false)
                    self.abandonPaidCall()
                    self.respondUpstreamError(.badGateway, body: self.shared.responses.paidResponseTooLarge)
                }
                return
            }
            if var head = self.responseHead {
                self.responseHead = nil
                if buffer.readableBytes <= Self.coalescedBodyBytes {
                    head.writeBuffer(&buffer)
                    self.writeOut(head)
                    return
                }
                self.writeOut(head)
            }
            self.context.write(self.wrapOutboundOut(buffer), promise: nil)
        case .end where self.isBufferingPaidCall:
            self.detachUpstream(reusable: self.upstreamKeepAlive && self.requestEnded && self.requestPhase == .sent)
            self.finishPaidCall(close: self.closeAfterResponse || !self.requestEnded)
        case .end:
            // A response that ended before its request did leaves the connection mid-request: close it.
            self.detachUpstream(reusable: self.upstreamKeepAlive && self.requestEnded && self.requestPhase == .sent)
            self.recordUsage(statusCode: self.statusCode)
            let close = self.closeAfterResponse || !self.requestEnded
            self.endCall()
            self.finishResponse(close: close)
            if !close { self.replayPipelined() }
        }
    }

    func upstreamReadComplete() {
        if self.responsePhase == .streaming {
            self.writeResponseHead()
            self.context.flush()
        }
    }

    /// Writes the forwarded response head if it is still held (no body part came with it).
    func writeResponseHead() {
        if let head = self.responseHead {
            self.responseHead = nil
            self.writeOut(head)
        }
    }

    /// A buffer for a response head: the last one's storage again once the channel wrote it (so a
    /// keep-alive connection allocates none per call), or a new one.
    func takeOutBuffer(capacity: Int) -> ByteBuffer {
        self.reuse(&self.outScratch, capacity: capacity)
    }

    /// `scratch`'s storage, emptied, if there is one (it allocates only if the channel still holds
    /// it), or a new buffer; `scratch` is left empty.
    func reuse(_ scratch: inout ByteBuffer?, capacity: Int) -> ByteBuffer {
        guard var buffer = scratch else { return self.context.channel.allocator.buffer(capacity: capacity) }
        scratch = nil
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    /// Writes `out` to the client and keeps its storage for the next head (see `takeOutBuffer`).
    func writeOut(_ out: ByteBuffer) {
        self.context.write(self.wrapOutboundOut(out), promise: nil)
        if out.capacity <= Self.keptScratchBytes { self.outScratch = out }
    }

    /// Largest buffer kept between calls; a bigger one (a large head) is let go.
    static let keptScratchBytes = 16_384

    /// A body part up to this size goes out in the head's buffer (copied) rather than as a write of its own.
    static let coalescedBodyBytes = 2_048

    func upstreamBecameWritable() {
        self.resumeClientReads()
    }

    func upstreamClosed(_ connection: UpstreamConnection) {
        guard connection === self.upstream else { return }
        self.upstream = nil
        // A reused connection the upstream closed while idle: nothing of the request was lost if no
        // body byte went out, so try once more on a fresh connection.
        if self.responsePhase == .notStarted, connection.requestsSent > 1, self.requestBytes == 0, !self.retried {
            self.retried = true
            self.connectUpstream()
            return
        }
        self.upstreamFailed(kind: .upstreamClosed)
    }

    func upstreamTimedOut(_ connection: UpstreamConnection) {
        guard connection === self.upstream else { return }
        self.upstream = nil
        self.upstreamFailed(kind: .upstreamTimeout)
    }

    private func upstreamFailed(kind: ProxyError.Code) {
        self.abandonPaidCall()
        if kind == .upstreamTimeout {
            self.shared.metrics.upstreamTimeouts.increment()
        } else {
            self.shared.metrics.upstreamClosed.increment()
        }
        switch self.responsePhase {
        case .notStarted:
            if kind == .upstreamTimeout {
                self.respondUpstreamError(.gatewayTimeout, body: self.shared.responses.upstreamTimeout)
            } else {
                self.respondUpstreamError(.badGateway, body: self.shared.responses.upstreamClosed)
            }
        case .streaming:
            // Headers are out: the client can only see a truncated response. Metered as a 5xx.
            self.recordUsage(statusCode: 502)
            self.endCall()
            self.closeClient()
        case .finished:
            break
        }
    }

    // MARK: Responses the proxy writes itself

    /// 502/504: the call reached the proxy with a valid key, so it is metered as a 5xx.
    func respondUpstreamError(_ status: HTTPResponseStatus, body: ByteBuffer) {
        self.statusCode = Int(status.code)
        self.recordUsage(statusCode: self.statusCode)
        self.respondLocally(status: status, body: body, close: false)
    }

    /// 400/401/413/431/503 for key lookup: refused by the proxy itself. These are not metered as
    /// upstream usage: the upstream never saw the call, and counting them would let anyone with a
    /// bad key or a malformed request burn someone's quota.
    func refuse(_ reason: RefusalReason, status: HTTPResponseStatus, body: ByteBuffer, close: Bool, headers: HTTPHeaders = HTTPHeaders()) {
        self.shared.metrics.countRefusal(reason)
        self.respondLocally(status: status, body: body, close: close, headers: headers)
    }

    /// Writes a response the proxy made (its own JSON, or a kept paid response with its own
    /// content type when `json` is false) and ends the call, draining what is left of the request.
    func respondLocally(status: HTTPResponseStatus, body: ByteBuffer, close: Bool, headers extra: HTTPHeaders = HTTPHeaders(), json: Bool = true) {
        self.responsePhase = .finished
        self.pendingParts.removeAll(keepingCapacity: true)
        let close = close || self.closeAfterResponse
        let finished = self.requestEnded || close
        if finished {
            self.endCall()
        } else {
            // Drop the rest of the request, then serve the next one on this connection.
            self.requestPhase = .discarding
            self.resumeClientReads()
        }
        self.writeLocalResponse(status, body: body, close: close, headers: extra, json: json)
        if finished, !close { self.replayPipelined() }
    }

    func writeLocalResponse(_ status: HTTPResponseStatus, body: ByteBuffer, close: Bool, headers extra: HTTPHeaders = HTTPHeaders(), json: Bool = true) {
        self.shared.metrics.countResponse(StatusClass(statusCode: Int(status.code)) ?? .serverError)
        // A HEAD is answered with the head alone, its length the body's it would have had.
        let sendsBody = !self.isHEADRequest
        var out = self.takeOutBuffer(capacity: 160 + (sendsBody ? body.readableBytes : 0))
        out.writeStaticString(self.clientVersion == .http1_1 ? "HTTP/1.1 " : "HTTP/1.0 ")
        out.writeString(String(status.code))
        out.writeStaticString(" ")
        out.writeString(status.reasonPhrase)
        out.writeStaticString("\r\n")
        for (name, value) in extra { out.writeField(name, value) }
        if json { out.writeStaticString("content-type: application/json\r\n") }
        out.writeField("content-length", String(body.readableBytes))
        if close { out.writeStaticString("connection: close\r\n") }
        out.writeStaticString("\r\n")
        if sendsBody {
            var body = body
            out.writeBuffer(&body)
        }
        self.writeOut(out)
        self.finishResponse(close: close)
    }

    /// Flushes what the response wrote; closes the connection after it when `close`.
    func finishResponse(close: Bool) {
        self.writeResponseHead()
        if close {
            self.isClosing = true
            let context = self.context!
            context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            self.context.flush()
        }
    }

    // MARK: Metering

    /// Hands the finished call to the recorder (and counts its status class).
    func recordUsage(statusCode: Int) {
        let statusClass = StatusClass(statusCode: statusCode) ?? .serverError
        var units: UInt64 = 1
        var extra: [String: UInt64] = [:]
        if !self.unitsHeaderValues.isEmpty {
            if let reported = TollgateUnits(headerValues: self.unitsHeaderValues) {
                (units, extra) = reported.split(for: self.feature.rawValue)
            } else {
                self.shared.metrics.unitsParseErrors.increment()
            }
        }
        let latency = NIODeadline.now() - self.startTime
        var event = UsageEvent(
            key: self.keyID, feature: self.feature, units: units, statusClass: statusClass,
            latency: .nanoseconds(latency.nanoseconds), requestBytes: UInt64(self.requestBytes),
            responseBytes: UInt64(self.responseBytes), idempotencyKey: self.idempotencyKey, at: self.startWall
        )
        event.leasedUnits = min(self.leasedUnits, units)
        if self.leasedUnits > units, let gate = self.shared.gate {
            // The upstream reported fewer units than were admitted: the rest go back to the lease.
            gate.refund(keyID: self.keyID, feature: self.feature, leasedUnits: self.leasedUnits - units, at: self.startWall)
        }
        self.leasedUnits = 0
        // The interval from the call's own question to the gate, when it is this call's.
        let interval = self.gateRequest.flatMap { $0.keyID == self.keyID && $0.feature == self.feature ? $0.interval : nil }
        self.shared.recorder.record(event, interval: interval, extraUnits: extra)
    }
}
