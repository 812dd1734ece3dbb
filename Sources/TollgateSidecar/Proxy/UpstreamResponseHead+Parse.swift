import NIOCore

extension UpstreamResponseReader {
    /// Parses a response head (status line and field lines, without the empty line after them).
    /// Rules: RFC 9112 §4 (status line), §6.3 (framing; `Transfer-Encoding` wins over
    /// `Content-Length`, differing lengths are an error), RFC 9110 §7.6.1 (hop-by-hop fields).
    static func parse(_ bytes: ByteBuffer, noBody: Bool) throws -> UpstreamResponseHead {
        try bytes.withUnsafeReadableBytes { raw in
            // "HTTP/1.x SSS[ reason]"
            guard raw.count >= 12, raw[0] == UInt8(ascii: "H"), raw[1] == UInt8(ascii: "T"), raw[2] == UInt8(ascii: "T"),
                  raw[3] == UInt8(ascii: "P"), raw[4] == UInt8(ascii: "/"), raw[5] == UInt8(ascii: "1"), raw[6] == UInt8(ascii: "."),
                  raw[7] == UInt8(ascii: "0") || raw[7] == UInt8(ascii: "1"), raw[8] == UInt8(ascii: " ")
            else { throw ReadError.malformedHead }
            var status = 0
            for index in 9..<12 {
                let byte = raw[index]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw ReadError.malformedHead }
                status = status * 10 + Int(byte - UInt8(ascii: "0"))
            }
            guard status >= 100, raw.count == 12 || raw[12] == UInt8(ascii: " ") || raw[12] == UInt8(ascii: "\r")
                || raw[12] == UInt8(ascii: "\n") else { throw ReadError.malformedHead }
            let http10 = raw[7] == UInt8(ascii: "0")
            guard let firstNewline = raw.firstIndex(of: UInt8(ascii: "\n")) else { throw ReadError.malformedHead }
            var head = UpstreamResponseHead(bytes: bytes, status: status, statusLineEnd: firstNewline + 1)

            var closeToken = false
            var keepAliveToken = false
            var contentLength: Int?
            var chunked = false
            var sawTransferEncoding = false
            var contentLengthLines: [Range<Int>] = []
            var firstContentLengthLine: Range<Int>?
            var transferEncodingLines: [Range<Int>] = []
            var connectionNames: [String] = []
            var position = firstNewline + 1
            while position < raw.count {
                guard let newline = raw[position...].firstIndex(of: UInt8(ascii: "\n")) else { throw ReadError.malformedHead }
                let line = position..<(newline + 1)
                position = newline + 1
                guard let colon = raw[line].firstIndex(of: UInt8(ascii: ":")), colon > line.lowerBound else { throw ReadError.malformedHead }
                let name = UnsafeRawBufferPointer(rebasing: raw[line.lowerBound..<colon])
                var valueStart = colon + 1
                var valueEnd = newline
                while valueEnd > valueStart, UpstreamResponseHead.isTrimmed(raw[valueEnd - 1]) { valueEnd -= 1 }
                while valueStart < valueEnd, UpstreamResponseHead.isTrimmed(raw[valueStart]) { valueStart += 1 }
                let value = UnsafeRawBufferPointer(rebasing: raw[valueStart..<valueEnd])
                switch FieldBytes.classify(name) {
                case .other:
                    for byte in name where byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { throw ReadError.malformedHead }
                case .contentLength:
                    guard let length = FieldBytes.decimal(value), contentLength == nil || contentLength == length else {
                        throw ReadError.badContentLength
                    }
                    contentLength = length
                    if firstContentLengthLine == nil { firstContentLengthLine = line } else { contentLengthLines.append(line) }
                case .transferEncoding:
                    sawTransferEncoding = true
                    chunked = FieldBytes.endsWithChunked(value)
                    transferEncodingLines.append(line)
                case .connection:
                    head.dropped.append(line)
                    FieldBytes.forEachToken(value) { token in
                        if FieldBytes.equalsLowercased(token, "close") {
                            closeToken = true
                        } else if FieldBytes.equalsLowercased(token, "keep-alive") {
                            keepAliveToken = true
                        } else {
                            connectionNames.append(FieldBytes.lowercased(token))
                        }
                    }
                case .units:
                    head.dropped.append(line)
                    head.units.append(String(decoding: value, as: UTF8.self))
                case .hopByHop:
                    head.dropped.append(line)
                }
            }
            if !connectionNames.isEmpty {
                // Fields the upstream's `Connection` names are for this hop only.
                var named: [Range<Int>] = []
                head.forEachLine { line, _ in
                    if let name = head.lowercasedName(in: line), connectionNames.contains(name) { named.append(line) }
                }
                head.dropped.append(contentsOf: named)
                head.dropped.sort { $0.lowerBound < $1.lowerBound }
            }
            if sawTransferEncoding {
                // Transfer-Encoding overrides Content-Length, which is then dropped (RFC 9112 §6.3).
                if let first = firstContentLengthLine {
                    head.dropped.append(first)
                    head.dropped.append(contentsOf: contentLengthLines)
                    head.dropped.sort { $0.lowerBound < $1.lowerBound }
                }
                head.framingLine = transferEncodingLines.first
                head.moreFramingLines = Array(transferEncodingLines.dropFirst())
            } else {
                head.framingLine = firstContentLengthLine
                head.moreFramingLines = contentLengthLines
            }
            if noBody || status < 200 || status == 204 || status == 304 {
                head.framing = .none
            } else if sawTransferEncoding {
                head.framing = chunked ? .chunked : .close
            } else if let contentLength {
                head.framing = .length(contentLength)
            } else {
                head.framing = .close
            }
            head.keepAlive = !closeToken && (!http10 || keepAliveToken) && head.framing != .close
            return head
        }
    }
}
