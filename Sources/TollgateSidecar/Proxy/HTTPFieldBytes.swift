import NIOCore

/// Field names and values read from raw bytes, for both readers: the response fields the proxy
/// acts on (recognised by length first), tokens, decimals, ASCII case.
enum FieldBytes {
    enum Kind { case other, contentLength, transferEncoding, connection, units, hopByHop }

    static func classify(_ name: UnsafeRawBufferPointer) -> Kind {
        switch name.count {
        case 2: return equalsLowercased(name, "te") ? .hopByHop : .other
        case 7: return equalsLowercased(name, "trailer") || equalsLowercased(name, "upgrade") ? .hopByHop : .other
        case 10:
            if equalsLowercased(name, "connection") { return .connection }
            if equalsLowercased(name, "keep-alive") { return .hopByHop }
        case 14:
            if equalsLowercased(name, "content-length") { return .contentLength }
            if equalsLowercased(name, "tollgate-units") { return .units }
        case 17:
            if equalsLowercased(name, "transfer-encoding") { return .transferEncoding }
        default:
            break
        }
        return name.count > 6 && hasProxyPrefix(name) ? .hopByHop : .other
    }

    @inline(__always)
    static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        var p = lower.utf8Start
        for byte in bytes {
            let folded = (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
            if folded != p.pointee { return false }
            p += 1
        }
        return true
    }

    static func hasProxyPrefix(_ name: UnsafeRawBufferPointer) -> Bool {
        equalsLowercased(UnsafeRawBufferPointer(rebasing: name[0..<6]), "proxy-")
    }

    /// A non-negative decimal of at most 18 digits.
    static func decimal(_ value: UnsafeRawBufferPointer) -> Int? {
        guard !value.isEmpty, value.count <= 18 else { return nil }
        var result = 0
        for byte in value {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            result = result * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return result
    }

    /// Whether the last coding of a `Transfer-Encoding` value is `chunked`.
    static func endsWithChunked(_ value: UnsafeRawBufferPointer) -> Bool {
        var last: UnsafeRawBufferPointer?
        forEachToken(value) { last = $0 }
        return last.map { equalsLowercased($0, "chunked") } ?? false
    }

    /// Calls `body` with each comma-separated token, trimmed of spaces and tabs; empty ones skipped.
    static func forEachToken(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
            var s = start
            var e = end
            while s < e, value[s] == UInt8(ascii: " ") || value[s] == UInt8(ascii: "\t") { s += 1 }
            while e > s, value[e - 1] == UInt8(ascii: " ") || value[e - 1] == UInt8(ascii: "\t") { e -= 1 }
            if e > s { body(UnsafeRawBufferPointer(rebasing: value[s..<e])) }
            start = end + 1
        }
    }

    /// `bytes` as a string, ASCII letters lowercased (names are compared lowercased).
    static func lowercased<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        String(decoding: bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// Longest chunk-size line (extensions included) or trailer line either reader takes.
    static let maxChunkLineBytes = 4_096

    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}

/// The start of a message head kept across reads until the empty line that ends it arrives; both
/// readers take their heads through one. The bytes are copied only when a head spans reads.
///
/// Threading: a value owned by one reader.
struct PendingHead {
    enum Taken {
        case head(ByteBuffer)
        case needMore
        case tooLarge
    }

    private var kept: ByteBuffer?

    mutating func reset() {
        self.kept = nil
    }

    /// The head's bytes (without the empty line that ends it), from what was kept and `buffer`,
    /// which is left holding what follows the head. `skip` drops what may come before a head (a
    /// request's empty lines); `end` finds the head's length and its terminator's, searching from
    /// an offset (where the bytes that had arrived before stop, less three).
    mutating func take(
        _ buffer: inout ByteBuffer, maxBytes: Int, skip: (inout ByteBuffer) -> Void = { _ in },
        end: (ByteBuffer, Int) -> (headLength: Int, terminatorLength: Int)?
    ) -> Taken {
        var work: ByteBuffer
        var searchFrom = 0
        let wasKept = self.kept != nil
        if var kept = self.kept {
            self.kept = nil
            let before = kept.readableBytes
            kept.writeBuffer(&buffer)
            work = kept
            skip(&work)
            searchFrom = max(0, min(before, work.readableBytes) - 3)
        } else {
            work = buffer
            skip(&work)
        }
        guard work.readableBytes > 0 else {
            buffer = work
            return .needMore
        }
        guard let found = end(work, searchFrom) else {
            guard work.readableBytes <= maxBytes else { return .tooLarge }
            if wasKept {
                self.kept = work
            } else {
                var copy = ByteBufferAllocator().buffer(capacity: max(work.readableBytes * 2, 1_024))
                copy.writeBuffer(&work)
                self.kept = copy
            }
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .needMore
        }
        guard found.headLength <= maxBytes else { return .tooLarge }
        let head = work.readSlice(length: found.headLength)!
        work.moveReaderIndex(forwardBy: found.terminatorLength)
        buffer = work
        return .head(head)
    }
}
