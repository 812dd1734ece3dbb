import NIOCore

/// Reads HTTP/1.1 requests off a client connection: each head parsed in place
/// (`ProxyRequestHead`), then the body by its framing, handed on as slices of the received
/// buffers (a chunked body as its data; the proxy chunks it again upstream).
///
/// Strict, because the bytes come from anyone (RFC 9112): CRLF line ends, token method and field
/// names, no space before a colon, no folded lines, no control characters in values; HTTP/1.0 or
/// 1.1 only; `Content-Length` digits only and consistent; `Transfer-Encoding` only in 1.1 and
/// never beside `Content-Length`; chunk lines bounded. Anything else is `malformed` (400) or,
/// past the configured sizes, `headTooLarge` (431), and the connection is closed after the answer.
///
/// Threading: a value owned by one `ProxyHandler`, on its event loop.
struct ProxyRequestReader {
    enum Event {
        case head(ProxyRequestHead)
        case body(ByteBuffer)
        case end
    }

    enum ReadError: Error, Equatable {
        case malformed, headTooLarge
    }

    private enum State: Equatable {
        case head, length(Int), chunkSize, chunkData(Int), chunkDataEnd, trailers
    }

    private var state = State.head
    private var pending = PendingHead()
    private var endPending = false
    private var lineBytes = 0
    private var chunkSize = 0
    private var chunkDigits = 0
    private var inExtension = false
    private var sawCR = false
    private var trailerBytes = 0
    let maxFieldBytes: Int
    let maxListBytes: Int
    let keyHeader: [UInt8]?

    /// The request line may add this much to the field limit before the head counts as too large.
    static let requestLineAllowance = 8_192

    init(maxFieldBytes: Int, maxListBytes: Int, keyHeader: String?) {
        self.maxFieldBytes = maxFieldBytes
        self.maxListBytes = maxListBytes
        self.keyHeader = keyHeader.map { Array($0.lowercased().utf8) }
    }

    private var maxHeadBytes: Int { self.maxListBytes + Self.requestLineAllowance }

    /// The next event from `buffer`, consuming what it covers; nil when `buffer` holds nothing more
    /// to act on (the start of a head is kept for the next read).
    mutating func next(_ buffer: inout ByteBuffer) throws -> Event? {
        if self.endPending {
            self.endPending = false
            return .end
        }
        while buffer.readableBytes > 0 {
            switch self.state {
            case .head:
                guard let bytes = try self.takeHead(&buffer) else { return nil }
                let head = try Self.parse(bytes, maxFieldBytes: self.maxFieldBytes, maxListBytes: self.maxListBytes, keyHeader: self.keyHeader)
                if head.scan.chunked {
                    self.state = .chunkSize
                    self.resetChunkLine()
                } else if let length = head.contentLength, length > 0 {
                    self.state = .length(length)
                } else {
                    self.endPending = true
                }
                return .head(head)
            case .length(let remaining):
                let count = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: count)!
                if remaining == count {
                    self.state = .head
                    self.endPending = true
                } else {
                    self.state = .length(remaining - count)
                }
                return .body(slice)
            case .chunkSize, .chunkData, .chunkDataEnd, .trailers:
                if let event = try self.readChunked(&buffer) { return event }
            }
        }
        if self.endPending {
            self.endPending = false
            return .end
        }
        return nil
    }

    /// The head's bytes (without the empty line) once it has all arrived; empty lines before a
    /// request line are skipped (RFC 9112 §2.2).
    private mutating func takeHead(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        switch self.pending.take(&buffer, maxBytes: self.maxHeadBytes, skip: Self.skipEmptyLines, end: { buffer, from in
            Self.headLength(in: buffer, from: from).map { ($0, 2) }
        }) {
        case .head(let head): return head
        case .needMore: return nil
        case .tooLarge: throw ReadError.headTooLarge
        }
    }

    /// Skips CRLFs before a request line (RFC 9112 §2.2).
    private static func skipEmptyLines(_ buffer: inout ByteBuffer) {
        while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == UInt8(ascii: "\r"),
              buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) == UInt8(ascii: "\n") {
            buffer.moveReaderIndex(forwardBy: 2)
        }
    }

    /// The length of the head's lines up to the CRLF CRLF that ends it (the last line's CRLF included).
    static func headLength(in buffer: ByteBuffer, from start: Int) -> Int? {
        buffer.withUnsafeReadableBytes { raw in
            var index = start
            while index + 3 < raw.count {
                guard let newline = raw[(index + 1)...].firstIndex(of: UInt8(ascii: "\n")), newline + 2 < raw.count else { return nil }
                if raw[newline - 1] == UInt8(ascii: "\r"), raw[newline + 1] == UInt8(ascii: "\r"), raw[newline + 2] == UInt8(ascii: "\n") {
                    return newline + 1
                }
                index = newline
            }
            return nil
        }
    }

    private mutating func resetChunkLine() {
        self.lineBytes = 0
        self.chunkSize = 0
        self.chunkDigits = 0
        self.inExtension = false
        self.sawCR = false
    }

    /// Reads chunked framing and hands on the data, one slice at a time.
    private mutating func readChunked(_ buffer: inout ByteBuffer) throws -> Event? {
        while buffer.readableBytes > 0 {
            switch self.state {
            case .chunkSize:
                guard let size = try self.readChunkLine(&buffer) else { return nil }
                self.resetChunkLine()
                self.trailerBytes = 0
                self.state = size == 0 ? .trailers : .chunkData(size)
            case .chunkData(let remaining):
                let count = min(remaining, buffer.readableBytes)
                self.state = remaining == count ? .chunkDataEnd : .chunkData(remaining - count)
                return .body(buffer.readSlice(length: count)!)
            case .chunkDataEnd:
                let byte = buffer.readInteger(as: UInt8.self)!
                if !self.sawCR {
                    guard byte == UInt8(ascii: "\r") else { throw ReadError.malformed }
                    self.sawCR = true
                } else {
                    guard byte == UInt8(ascii: "\n") else { throw ReadError.malformed }
                    self.sawCR = false
                    self.state = .chunkSize
                }
            case .trailers:
                // Trailer lines (dropped) until an empty one; bounded like fields.
                let byte = buffer.readInteger(as: UInt8.self)!
                self.trailerBytes += 1
                guard self.trailerBytes <= self.maxListBytes else { throw ReadError.headTooLarge }
                if self.sawCR {
                    guard byte == UInt8(ascii: "\n") else { throw ReadError.malformed }
                    self.sawCR = false
                    if self.lineBytes == 0 {
                        self.state = .head
                        return .end
                    }
                    self.lineBytes = 0
                } else if byte == UInt8(ascii: "\r") {
                    self.sawCR = true
                } else {
                    guard byte != UInt8(ascii: "\n"), byte != 0 else { throw ReadError.malformed }
                    self.lineBytes += 1
                }
            case .head, .length:
                return nil
            }
        }
        return nil
    }

    /// A chunk-size line's size, or nil if the buffer ran out first (what was read is kept).
    private mutating func readChunkLine(_ buffer: inout ByteBuffer) throws -> Int? {
        while let byte = buffer.readInteger(as: UInt8.self) {
            self.lineBytes += 1
            guard self.lineBytes <= FieldBytes.maxChunkLineBytes else { throw ReadError.malformed }
            if self.sawCR {
                guard byte == UInt8(ascii: "\n"), self.chunkDigits > 0 else { throw ReadError.malformed }
                return self.chunkSize
            }
            if byte == UInt8(ascii: "\r") {
                self.sawCR = true
                continue
            }
            if self.inExtension {
                guard byte >= 0x20 || byte == UInt8(ascii: "\t"), byte != 0x7F else { throw ReadError.malformed }
                continue
            }
            if byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                guard self.chunkDigits > 0 else { throw ReadError.malformed }
                self.inExtension = true
                continue
            }
            guard let digit = FieldBytes.hexValue(byte), self.chunkDigits < 15 else { throw ReadError.malformed }
            self.chunkSize = self.chunkSize << 4 | digit
            self.chunkDigits += 1
        }
        return nil
    }
}
