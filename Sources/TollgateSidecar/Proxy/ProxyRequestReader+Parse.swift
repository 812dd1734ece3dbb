import NIOCore
import NIOHTTP1

extension ProxyRequestReader {
    /// Parses a request head (request line and field lines, CRLF each, without the empty line).
    static func parse(_ bytes: ByteBuffer, maxFieldBytes: Int, maxListBytes: Int, keyHeader: [UInt8]?) throws -> ProxyRequestHead {
        try bytes.withUnsafeReadableBytes { raw in
            // request-line = method SP request-target SP HTTP-version CRLF
            guard let lineEnd = Self.lineEnd(raw, from: 0) else { throw ReadError.malformed }
            var index = 0
            while index < lineEnd, Self.isTokenByte(raw[index]) { index += 1 }
            guard index > 0, index < lineEnd, raw[index] == UInt8(ascii: " ") else { throw ReadError.malformed }
            let method = Self.method(UnsafeRawBufferPointer(rebasing: raw[0..<index]))
            guard method != .CONNECT else { throw ReadError.malformed }  // a reverse proxy tunnels nothing
            let targetStart = index + 1
            index = targetStart
            while index < lineEnd, raw[index] > 0x20, raw[index] != 0x7F { index += 1 }
            let targetEnd = index
            guard targetEnd > targetStart, lineEnd - targetEnd == 9, raw[targetEnd] == UInt8(ascii: " "),
                  raw[targetEnd + 1] == UInt8(ascii: "H"), raw[targetEnd + 2] == UInt8(ascii: "T"), raw[targetEnd + 3] == UInt8(ascii: "T"),
                  raw[targetEnd + 4] == UInt8(ascii: "P"), raw[targetEnd + 5] == UInt8(ascii: "/"), raw[targetEnd + 6] == UInt8(ascii: "1"),
                  raw[targetEnd + 7] == UInt8(ascii: "."), raw[targetEnd + 8] == UInt8(ascii: "0") || raw[targetEnd + 8] == UInt8(ascii: "1")
            else { throw ReadError.malformed }
            let version: HTTPVersion = raw[targetEnd + 8] == UInt8(ascii: "1") ? .http1_1 : .http1_0
            let uri = String(decoding: UnsafeRawBufferPointer(rebasing: raw[targetStart..<targetEnd]), as: UTF8.self)
            var head = ProxyRequestHead(bytes: bytes, method: method, uri: uri, version: version, targetEnd: targetEnd, requestLineEnd: lineEnd + 2)

            var position = lineEnd + 2
            var listBytes = 0
            var contentLengthLines: [Range<Int>] = []
            while position < raw.count {
                guard let end = Self.lineEnd(raw, from: position) else { throw ReadError.malformed }
                let line = position..<(end + 2)
                defer { position = end + 2 }
                // field-line = field-name ":" OWS field-value OWS; a name is a token, right before the colon.
                var colon = position
                while colon < end, Self.isTokenByte(raw[colon]) { colon += 1 }
                guard colon > position, colon < end, raw[colon] == UInt8(ascii: ":") else { throw ReadError.malformed }
                var valueStart = colon + 1
                var valueEnd = end
                while valueStart < valueEnd, raw[valueStart] == UInt8(ascii: " ") || raw[valueStart] == UInt8(ascii: "\t") { valueStart += 1 }
                while valueEnd > valueStart, raw[valueEnd - 1] == UInt8(ascii: " ") || raw[valueEnd - 1] == UInt8(ascii: "\t") { valueEnd -= 1 }
                for i in valueStart..<valueEnd {
                    let byte = raw[i]
                    guard byte >= 0x20 || byte == UInt8(ascii: "\t"), byte != 0x7F else { throw ReadError.malformed }
                }
                let fieldBytes = (colon - position) + (valueEnd - valueStart)
                listBytes += fieldBytes
                guard fieldBytes <= maxFieldBytes, listBytes <= maxListBytes else { throw ReadError.headTooLarge }
                let name = UnsafeRawBufferPointer(rebasing: raw[position..<colon])
                let value = UnsafeRawBufferPointer(rebasing: raw[valueStart..<valueEnd])
                if name.count == 14, FieldBytes.equalsLowercased(name, "content-length") {
                    guard let length = FieldBytes.decimal(value), head.contentLength == nil || head.contentLength == length else {
                        throw ReadError.malformed
                    }
                    head.contentLength = length
                    contentLengthLines.append(line)
                    continue
                }
                if head.scan.take(name: name, value: value, valueRange: valueStart..<valueEnd, keyHeader: keyHeader) == .drop { head.dropped.append(line) }
            }
            head.scan.finish()
            let scan = head.scan
            if scan.sawTransferEncoding {
                // Only a 1.1 request may be chunked, only as its last coding, never with a length (RFC 9112 §6.1, §6.3).
                guard version == .http1_1, scan.chunked, head.contentLength == nil else { throw ReadError.malformed }
            }
            if !scan.connectionNames.isEmpty {
                var named: [Range<Int>] = []
                var at = head.requestLineEnd
                while at < raw.count, let end = Self.lineEnd(raw, from: at) {
                    if let colon = raw[at..<end].firstIndex(of: UInt8(ascii: ":")) {
                        let name = FieldBytes.lowercased(raw[at..<colon])
                        if scan.connectionNames.contains(name) { named.append(at..<(end + 2)) }
                    }
                    at = end + 2
                }
                head.dropped.append(contentsOf: named)
            }
            if contentLengthLines.count > 1 { head.dropped.append(contentsOf: contentLengthLines.dropFirst()) }  // one is enough
            if head.dropped.count > 1 {
                head.dropped.sort { $0.lowerBound < $1.lowerBound }
                var unique: [Range<Int>] = []
                for range in head.dropped where unique.last != range { unique.append(range) }
                head.dropped = unique
            }
            head.isKeepAlive = version == .http1_1 ? !scan.closeToken : (scan.keepAliveToken && !scan.closeToken)
            return head
        }
    }

    /// Where the CRLF that ends the line starting at `start` is; a CR or LF alone is malformed.
    static func lineEnd(_ raw: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var index = start
        while index < raw.count {
            let byte = raw[index]
            if byte == UInt8(ascii: "\r") { return index + 1 < raw.count && raw[index + 1] == UInt8(ascii: "\n") ? index : nil }
            if byte == UInt8(ascii: "\n") || byte == 0 { return nil }
            index += 1
        }
        return nil
    }

    /// tchar (RFC 9110 §5.6.2).
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// The method, without a string for the common ones.
    static func method(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod {
        switch bytes.count {
        case 3:
            if Self.equals(bytes, "GET") { return .GET }
            if Self.equals(bytes, "PUT") { return .PUT }
        case 4:
            if Self.equals(bytes, "POST") { return .POST }
            if Self.equals(bytes, "HEAD") { return .HEAD }
        case 5:
            if Self.equals(bytes, "PATCH") { return .PATCH }
        case 6:
            if Self.equals(bytes, "DELETE") { return .DELETE }
        case 7:
            if Self.equals(bytes, "OPTIONS") { return .OPTIONS }
            if Self.equals(bytes, "CONNECT") { return .CONNECT }
        default:
            break
        }
        return HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
    }

    /// Exact (methods are case-sensitive).
    private static func equals(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        var p = text.utf8Start
        for byte in bytes {
            if byte != p.pointee { return false }
            p += 1
        }
        return true
    }
}
