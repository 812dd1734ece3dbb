import NIOCore

/// An upstream response head as the proxy forwards it: the bytes as they arrived, and what the
/// proxy needs from them (status, framing, keep-alive, reported units, the lines it must not pass
/// on). The head is parsed once, in place; forwarding copies its bytes minus the dropped lines.
///
/// Threading: a value, made and used on one event loop.
struct UpstreamResponseHead {
    /// How the response's body is delimited on the upstream connection (RFC 9112 §6.3).
    enum Framing: Equatable {
        /// No body: a HEAD request, 1xx, 204 or 304.
        case none
        /// `Content-Length` bytes.
        case length(Int)
        /// `Transfer-Encoding` ending in `chunked`.
        case chunked
        /// Everything until the upstream closes the connection.
        case close
    }

    /// The head's bytes: the status line and the field lines, each ending in CRLF or LF, without
    /// the empty line that ends the head.
    var bytes: ByteBuffer
    var status: Int
    /// Where the status line's version (`HTTP/1.x`, 8 bytes) ends and the rest (` 200 OK`) starts.
    static let versionLength = 8
    var statusLineEnd: Int
    var framing = Framing.close
    var keepAlive = true
    /// `Tollgate-Units` values, for the meter; never forwarded.
    var units: [String] = []
    /// Lines never forwarded: hop-by-hop fields, the fields `Connection` names, `Tollgate-Units`,
    /// a `Content-Length` beside `Transfer-Encoding`. Offsets into `bytes`, in order.
    var dropped: [Range<Int>] = []
    /// The framing line (`Content-Length` or `Transfer-Encoding`): forwarded with a body passed on
    /// as it came, dropped when the proxy frames the body itself. Kept inline: almost every
    /// response has exactly one.
    var framingLine: Range<Int>?
    /// Any further framing lines (several `Transfer-Encoding` lines, a repeated `Content-Length`).
    var moreFramingLines: [Range<Int>] = []

    func isFramingLine(_ line: Range<Int>) -> Bool {
        line == self.framingLine || (!self.moreFramingLines.isEmpty && self.moreFramingLines.contains(line))
    }

    /// Every forwarded field as a name and value, in order (for a paid response kept for a retry).
    func forEachField(_ body: (String, String) -> Void) {
        self.forEachLine { line, isFraming in
            guard !isFraming, let (name, value) = self.field(in: line) else { return }
            body(name, value)
        }
    }

    /// Calls `body` with each field line's range that is not dropped, and whether it is a framing line.
    func forEachLine(_ body: (Range<Int>, Bool) -> Void) {
        var dropIndex = 0
        var position = self.statusLineEnd
        self.bytes.withUnsafeReadableBytes { raw in
            while position < raw.count {
                var end = position
                while end < raw.count, raw[end] != UInt8(ascii: "\n") { end += 1 }
                let line = position..<min(end + 1, raw.count)
                position = line.upperBound
                while dropIndex < self.dropped.count, self.dropped[dropIndex].upperBound <= line.lowerBound { dropIndex += 1 }
                if dropIndex < self.dropped.count, self.dropped[dropIndex] == line { continue }
                body(line, self.isFramingLine(line))
            }
        }
    }

    /// The name and value of the field line at `range` (value trimmed), nil for a malformed line.
    func field(in range: Range<Int>) -> (String, String)? {
        self.bytes.withUnsafeReadableBytes { raw in
            let line = UnsafeRawBufferPointer(rebasing: raw[range])
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return nil }
            var start = colon + 1
            var end = line.count
            while end > start, Self.isTrimmed(line[end - 1]) { end -= 1 }
            while start < end, Self.isTrimmed(line[start]) { start += 1 }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: line[0..<colon]), as: UTF8.self)
            let value = String(decoding: UnsafeRawBufferPointer(rebasing: line[start..<end]), as: UTF8.self)
            return (name, value)
        }
    }

    @inline(__always)
    static func isTrimmed(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
    }
}

extension ByteBuffer {
    /// Writes an upstream response head for the client, up to (not including) the empty line
    /// that ends it: the status line in the client's HTTP version, then every forwarded field;
    /// framing lines only if `keepFraming`, and none of `replacing` (lowercase names the caller
    /// writes itself).
    mutating func writeResponseHead(_ head: UpstreamResponseHead, http10: Bool, keepFraming: Bool, replacing: [String] = []) {
        self.writeStaticString(http10 ? "HTTP/1.0" : "HTTP/1.1")
        var rest = head.bytes.getSlice(at: head.bytes.readerIndex + UpstreamResponseHead.versionLength,
                                       length: head.statusLineEnd - UpstreamResponseHead.versionLength)!
        self.writeBuffer(&rest)
        guard head.dropped.isEmpty, keepFraming, replacing.isEmpty else {
            head.forEachLine { line, isFraming in
                if isFraming, !keepFraming { return }
                if !replacing.isEmpty, let name = head.lowercasedName(in: line), replacing.contains(name) { return }
                var slice = head.bytes.getSlice(at: head.bytes.readerIndex + line.lowerBound, length: line.count)!
                self.writeBuffer(&slice)
            }
            return
        }
        var fields = head.bytes.getSlice(at: head.bytes.readerIndex + head.statusLineEnd,
                                         length: head.bytes.readableBytes - head.statusLineEnd)!
        self.writeBuffer(&fields)
    }

    /// Writes `name: value` and CRLF.
    mutating func writeField(_ name: StaticString, _ value: String) {
        self.writeStaticString(name)
        self.writeStaticString(": ")
        self.writeString(value)
        self.writeStaticString("\r\n")
    }

    /// Writes `name: value` and CRLF, for a name known only at run time.
    mutating func writeField(_ name: String, _ value: String) {
        self.writeString(name)
        self.writeStaticString(": ")
        self.writeString(value)
        self.writeStaticString("\r\n")
    }
}

extension UpstreamResponseHead {
    /// The lowercased name of the field line at `range`.
    func lowercasedName(in range: Range<Int>) -> String? {
        self.bytes.withUnsafeReadableBytes { raw in
            let line = UnsafeRawBufferPointer(rebasing: raw[range])
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return nil }
            return FieldBytes.lowercased(line[0..<colon])
        }
    }
}
