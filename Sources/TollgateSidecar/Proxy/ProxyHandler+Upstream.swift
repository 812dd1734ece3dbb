import NIOCore
import NIOHTTP1
import TollgateCore

extension ProxyHandler {
    // MARK: Upstream events (called by UpstreamConnection on the same loop)

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(var head):
            if head.status.code < 200 {
                // 100 Continue and friends pass through; 101 cannot happen since Upgrade is stripped.
                guard head.status != .switchingProtocols else {
                    self.detachUpstream(reusable: false)
                    self.upstreamFailed(kind: .upstreamClosed)
                    return
                }
                _ = head.headers.removeHopByHop()
                self.context.writeAndFlush(
                    self.wrapOutboundOut(.head(HTTPResponseHead(version: self.clientVersion, status: head.status, headers: head.headers))),
                    promise: nil
                )
                return
            }
            self.statusCode = Int(head.status.code)
            self.upstreamKeepAlive = head.isKeepAlive
            self.unitsHeaderValues = head.headers.removeHopByHop(alsoUnits: true).units
            if !self.requestEnded || self.requestPhase == .discarding { self.closeAfterResponse = true }
            if self.closeAfterResponse, self.clientVersion == .http1_1 { head.headers.add(name: "connection", value: "close") }
            if !self.rateLimitHeaders.isEmpty, let request = self.gateRequest { self.rateLimitFields.add(self.rateLimitHeaders, for: request, to: &head.headers) }
            self.shared.metrics.countResponse(StatusClass(statusCode: self.statusCode) ?? .serverError)
            let clientHead = HTTPResponseHead(version: self.clientVersion, status: head.status, headers: head.headers)
            if self.isBufferingPaidCall {
                // Held back until the payment is settled (or released, for a failed call).
                _ = self.bufferPaid(.head(clientHead))
                return
            }
            self.responsePhase = .streaming
            self.context.write(self.wrapOutboundOut(.head(clientHead)), promise: nil)
        case .body(let buffer):
            self.responseBytes += buffer.readableBytes
            if self.isBufferingPaidCall {
                if !self.bufferPaid(.body(.byteBuffer(buffer))) {
                    self.detachUpstream(reusable: false)
                    self.abandonPaidCall()
                    self.respondUpstreamError(.badGateway, body: self.shared.responses.paidResponseTooLarge)
                }
                return
            }
            self.context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end(let trailers) where self.isBufferingPaidCall:
            _ = trailers
            self.detachUpstream(reusable: self.upstreamKeepAlive && self.requestEnded && self.requestPhase == .sent)
            self.finishPaidCall(close: self.closeAfterResponse || !self.requestEnded)
        case .end(let trailers):
            // A response that ended before its request did leaves the connection mid-request: close it.
            self.detachUpstream(reusable: self.upstreamKeepAlive && self.requestEnded && self.requestPhase == .sent)
            self.recordUsage(statusCode: self.statusCode)
            let close = self.closeAfterResponse || !self.requestEnded
            self.endCall()
            self.writeEnd(trailers, close: close)
            if !close { self.replayPipelined() }
        }
    }

    func upstreamReadComplete() {
        if self.responsePhase == .streaming { self.context.flush() }
    }

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
        var headers = extra
        if json { headers.add(name: "content-type", value: "application/json") }
        headers.add(name: "content-length", value: String(body.readableBytes))
        if close { headers.add(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: self.clientVersion, status: status, headers: headers)
        self.context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        self.context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        self.writeEnd(nil, close: close)
    }

    func writeEnd(_ trailers: HTTPHeaders?, close: Bool) {
        if close {
            self.isClosing = true
            let context = self.context!
            context.writeAndFlush(self.wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            self.context.writeAndFlush(self.wrapOutboundOut(.end(trailers)), promise: nil)
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

    // MARK: Upstream request head

    /// The client's head minus hop-by-hop headers, plus `X-Forwarded-*`, as HTTP/1.1.
    func makeUpstreamHead(_ head: HTTPRequestHead, scan: RequestHeaderScan) -> HTTPRequestHead {
        var upstream = head
        upstream.version = .http1_1
        if scan.hasHopByHop {
            let chunked = upstream.headers.removeHopByHop().chunked
            if chunked, scan.contentLength == nil { upstream.headers.add(name: "transfer-encoding", value: "chunked") }
        }
        if let forwardedFor = scan.forwardedFor {
            upstream.headers.replaceOrAdd(name: "x-forwarded-for", value: forwardedFor + ", " + self.clientIP)
        } else {
            upstream.headers.add(name: "x-forwarded-for", value: self.clientIP)
        }
        if scan.hasForwardedProtoOrHost {
            upstream.headers.remove(name: "x-forwarded-proto")
            upstream.headers.remove(name: "x-forwarded-host")
        }
        if scan.payment != nil {
            // The client's payment is for Tollgate, not for the service behind it.
            upstream.headers.remove(name: "payment-signature")
            upstream.headers.remove(name: "x-payment")
        }
        upstream.headers.add(name: "x-forwarded-proto", value: "http")
        if let host = scan.host {
            upstream.headers.add(name: "x-forwarded-host", value: host)
        } else {
            upstream.headers.add(name: "host", value: self.shared.upstreamHostHeader)
        }
        return upstream
    }
}
