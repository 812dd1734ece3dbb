import NIOCore

/// Reads HTTP/1.1 responses off an upstream connection as it receives bytes: finds each head,
/// parses what the proxy needs from it (`UpstreamResponseHead`), then delimits the body by its
/// framing, handing the body on as slices of the received buffers, not copies.
///
/// A chunked body is passed on as it came (chunk lines included, so the client sees the same
/// framing) unless `dechunk` is set; then only the data is handed on. Either way `dataBytes` counts
/// the body's data, which is what the meter records.
///
/// Threading: a value owned by one `UpstreamConnection`, on its event loop.
struct UpstreamResponseReader {
    enum Event {
        /// A 1xx head; another head follows.
        case informational(UpstreamResponseHead)
        case head(UpstreamResponseHead)
        /// Body bytes to forward, and how many of them are the body's data.
        case body(ByteBuffer, dataBytes: Int)
        case end
    }

    enum ReadError: Error, Equatable {
        case headTooLarge, malformedHead, badContentLength, malformedChunk, bytesAfterResponse
    }

    private enum State: Equatable {
        case idle, head, length(Int), chunkSize, chunkData(Int), chunkDataEnd, trailers, close
    }

    private var state = State.idle
    private var pending = PendingHead()
    private var lineBytes = 0
    private var noBody = false
    private var endPending = false
    private var dechunk = false
    private var chunkSize = 0
    private var chunkDigits = 0
    private var inExtension = false
    let maxHeadBytes: Int

    init(maxHeadBytes: Int) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// Expects the response to a request just sent: no body if it was a HEAD; `dechunk` to hand on
    /// only the data of a chunked body.
    mutating func expectResponse(toHEAD: Bool, dechunk: Bool) {
        self.state = .head
        self.pending.reset()
        self.endPending = false
        self.noBody = toHEAD
        self.dechunk = dechunk
    }

    /// Expects nothing more (the response ended with the connection's close).
    mutating func expectNothing() {
        self.state = .idle
    }

    /// Whether the response in progress ends when the upstream closes (its end is the close).
    var endsAtClose: Bool { self.state == .close }

    /// The next event from `buffer`, consuming what it covers; nil once `buffer` holds nothing
    /// more to act on (the rest of a head is kept for the next read). One event at a time, so the
    /// caller may act on it (even send the next request) before asking for the next one. Bytes
    /// that arrive while no response is expected are an error: an upstream connection carries
    /// one exchange at a time.
    mutating func next(_ buffer: inout ByteBuffer) throws -> Event? {
        if self.endPending {
            self.endPending = false
            return .end
        }
        while buffer.readableBytes > 0 {
            switch self.state {
            case .idle:
                throw ReadError.bytesAfterResponse
            case .head:
                guard let head = try self.takeHead(&buffer) else { return nil }
                let parsed = try Self.parse(head, noBody: self.noBody)
                if parsed.status < 200 { return .informational(parsed) }
                switch parsed.framing {
                case .none, .length(0):
                    self.state = .idle
                    self.endPending = true
                case .length(let length): self.state = .length(length)
                case .chunked:
                    self.state = .chunkSize
                    self.lineBytes = 0
                case .close: self.state = .close
                }
                return .head(parsed)
            case .length(let remaining):
                let count = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: count)!
                if remaining == count {
                    self.state = .idle
                    self.endPending = true
                } else {
                    self.state = .length(remaining - count)
                }
                return .body(slice, dataBytes: count)
            case .close:
                let slice = buffer.readSlice(length: buffer.readableBytes)!
                return .body(slice, dataBytes: slice.readableBytes)
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

    /// The head's bytes once the empty line that ends it has arrived (kept across reads until then).
    private mutating func takeHead(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        switch self.pending.take(&buffer, maxBytes: self.maxHeadBytes, end: Self.headEnd) {
        case .head(let head): return head
        case .needMore: return nil
        case .tooLarge: throw ReadError.headTooLarge
        }
    }

    /// Where the head ends: the length of its lines (last line ending included) and of the empty
    /// line after them (CRLF or LF).
    static func headEnd(in buffer: ByteBuffer, from start: Int) -> (headLength: Int, terminatorLength: Int)? {
        buffer.withUnsafeReadableBytes { raw in
            var index = start
            while index < raw.count {
                guard let newline = raw[index...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
                let next = newline + 1
                if next < raw.count, raw[next] == UInt8(ascii: "\n") { return (next, 1) }
                if next + 1 < raw.count, raw[next] == UInt8(ascii: "\r"), raw[next + 1] == UInt8(ascii: "\n") { return (next, 2) }
                index = next
            }
            return nil
        }
    }

    /// Reads chunked framing: a data slice (when dechunking), or everything read (framing and
    /// data, when passing it on) up to the buffer's end or the body's; nil if there was nothing to
    /// hand on. Marks the end as pending once the last chunk and trailers are read.
    private mutating func readChunked(_ buffer: inout ByteBuffer) throws -> Event? {
        let original = buffer  // the same storage: what was read is sliced from it at the end
        var dataBytes = 0
        loop: while buffer.readableBytes > 0 {
            switch self.state {
            case .chunkSize:
                guard let size = try self.readChunkLine(&buffer) else { break loop }  // the line goes on in the next read
                self.state = size == 0 ? .trailers : .chunkData(size)
                self.lineBytes = 0
            case .chunkData(let remaining):
                let count = min(remaining, buffer.readableBytes)
                self.state = remaining == count ? .chunkDataEnd : .chunkData(remaining - count)
                if self.dechunk { return .body(buffer.readSlice(length: count)!, dataBytes: count) }
                buffer.moveReaderIndex(forwardBy: count)
                dataBytes += count
            case .chunkDataEnd:
                // The CRLF after a chunk's data (a bare LF is taken too).
                let byte = buffer.readInteger(as: UInt8.self)!
                if byte == UInt8(ascii: "\r") { continue }
                guard byte == UInt8(ascii: "\n") else { throw ReadError.malformedChunk }
                self.state = .chunkSize
                self.lineBytes = 0
            case .trailers:
                // Trailer lines until an empty one; a line's length is kept across reads.
                let byte = buffer.readInteger(as: UInt8.self)!
                if byte == UInt8(ascii: "\n") {
                    if self.lineBytes == 0 {
                        self.state = .idle
                        self.endPending = true
                        break loop
                    }
                    self.lineBytes = 0
                } else if byte != UInt8(ascii: "\r") {
                    self.lineBytes += 1
                    guard self.lineBytes <= FieldBytes.maxChunkLineBytes else { throw ReadError.malformedChunk }
                }
            default:
                break loop
            }
        }
        let length = buffer.readerIndex - original.readerIndex
        guard !self.dechunk, length > 0 else { return nil }
        return .body(original.getSlice(at: original.readerIndex, length: length)!, dataBytes: dataBytes)
    }

    /// Reads a chunk-size line: its size, or nil when the buffer ran out first (the digits read so
    /// far are kept). Extensions after `;` are ignored.
    private mutating func readChunkLine(_ buffer: inout ByteBuffer) throws -> Int? {
        while let byte = buffer.readInteger(as: UInt8.self) {
            self.lineBytes += 1
            guard self.lineBytes <= FieldBytes.maxChunkLineBytes else { throw ReadError.malformedChunk }
            if byte == UInt8(ascii: "\n") {
                guard self.chunkDigits > 0 else { throw ReadError.malformedChunk }
                let size = self.chunkSize
                self.chunkSize = 0
                self.chunkDigits = 0
                self.inExtension = false
                return size
            }
            if self.inExtension || byte == UInt8(ascii: "\r") { continue }
            if byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                self.inExtension = true
                continue
            }
            guard let digit = FieldBytes.hexValue(byte), self.chunkDigits < 15 else { throw ReadError.malformedChunk }
            self.chunkSize = self.chunkSize << 4 | digit
            self.chunkDigits += 1
        }
        return nil
    }
}
