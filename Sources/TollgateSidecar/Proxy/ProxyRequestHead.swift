import NIOCore
import NIOHTTP1

/// A client's request head as the proxy reads it: the bytes as they arrived, what the proxy acts
/// on (method, target, version, framing, the fields `RequestHeaderScan` picks out), and the lines
/// it does not forward. Forwarding copies the head's bytes minus those lines and adds this hop's
/// `X-Forwarded-*`; no field is turned into a string unless the proxy needs its value.
///
/// Threading: a value, made and used on one event loop.
struct ProxyRequestHead {
    /// The request line and field lines, each ending in CRLF, without the empty line after them.
    var bytes: ByteBuffer
    var method: HTTPMethod
    var uri: String
    var version: HTTPVersion
    /// Where `METHOD SP target` ends in the request line (the version is written anew).
    var targetEnd: Int
    var requestLineEnd: Int
    var isKeepAlive = true
    var contentLength: Int?
    var scan = RequestHeaderScan()
    /// Lines not forwarded: hop-by-hop fields and those `Connection` names, `X-Forwarded-*` (set
    /// for this hop instead), the x402 payment (it is for Tollgate), `Content-Length` beside a
    /// chunked body (sent chunked again). Offsets into `bytes`, in order.
    var dropped: [Range<Int>] = []

    /// The API key the request carries, if any.
    var apiKey: String? {
        self.scan.apiKeyRange.map { range in self.bytes.withUnsafeReadableBytes { String(decoding: $0[range], as: UTF8.self) } }
    }

    /// Whether the request's API key is `key`'s bytes.
    func apiKeyEquals(_ key: [UInt8]) -> Bool {
        guard let range = self.scan.apiKeyRange, range.count == key.count else { return false }
        return self.bytes.withUnsafeReadableBytes { $0[range].elementsEqual(key) }
    }
}

extension ByteBuffer {
    /// Writes the head of the request to send upstream: the client's request line as HTTP/1.1,
    /// its field lines but the dropped ones, `Transfer-Encoding: chunked` for a chunked body,
    /// `X-Forwarded-For` (the client's chain plus its address), `X-Forwarded-Proto`, and
    /// `X-Forwarded-Host`, or `Host` when the client sent none (HTTP/1.0).
    mutating func writeUpstreamRequestHead(_ head: ProxyRequestHead, clientIP: String, defaultHost: String) {
        var line = head.bytes.getSlice(at: head.bytes.readerIndex, length: head.targetEnd)!
        self.writeBuffer(&line)
        self.writeStaticString(" HTTP/1.1\r\n")
        var position = head.requestLineEnd
        for drop in head.dropped {
            if drop.lowerBound > position {
                var kept = head.bytes.getSlice(at: head.bytes.readerIndex + position, length: drop.lowerBound - position)!
                self.writeBuffer(&kept)
            }
            position = drop.upperBound
        }
        if position < head.bytes.readableBytes {
            var kept = head.bytes.getSlice(at: head.bytes.readerIndex + position, length: head.bytes.readableBytes - position)!
            self.writeBuffer(&kept)
        }
        let scan = head.scan
        if scan.chunked { self.writeStaticString("transfer-encoding: chunked\r\n") }
        self.writeStaticString("x-forwarded-for: ")
        if let forwardedFor = scan.forwardedFor {
            self.writeString(forwardedFor)
            self.writeStaticString(", ")
        }
        self.writeString(clientIP)
        self.writeStaticString("\r\nx-forwarded-proto: http\r\n")
        if let host = scan.host {
            self.writeField("x-forwarded-host", host)
        } else {
            self.writeField("host", defaultHost)
        }
        self.writeStaticString("\r\n")
    }
}
