import NIOCore
import Testing
@testable import TollgateSidecar

/// The upstream side's reader and the heads the proxy writes from what it read.
@Suite("UpstreamResponseReader: responses framed and passed on as bytes")
struct UpstreamResponseReaderTests {
    struct Read: Equatable {
        var heads: [String] = []
        var informational: [Int] = []
        var forwarded = ""
        var dataBytes = 0
        var units: [String] = []
        var keepAlive = true
        var ended = false
    }

    /// Reads one response fed in pieces of `split` bytes; heads are written as the proxy would for
    /// an HTTP/1.1 client (or 1.0 with `dechunk`).
    static func read(_ text: String, split: Int, toHEAD: Bool = false, dechunk: Bool = false, closeAtEnd: Bool = false) throws -> Read {
        var reader = UpstreamResponseReader(maxHeadBytes: 1_024)
        reader.expectResponse(toHEAD: toHEAD, dechunk: dechunk)
        var read = Read()
        let bytes = Array(text.utf8)
        var offset = 0
        func take(_ event: UpstreamResponseReader.Event) {
            switch event {
            case .informational(let head): read.informational.append(head.status)
            case .head(let head):
                var out = ByteBuffer()
                out.writeResponseHead(head, http10: dechunk, keepFraming: !(dechunk && head.framing == .chunked))
                read.heads.append(String(buffer: out))
                read.units = head.units
                read.keepAlive = head.keepAlive
            case .body(let buffer, let dataBytes):
                read.forwarded += String(buffer: buffer)
                read.dataBytes += dataBytes
            case .end: read.ended = true
            }
        }
        while offset < bytes.count {
            var buffer = ByteBuffer(bytes: bytes[offset..<min(offset + split, bytes.count)])
            offset += split
            while let event = try reader.next(&buffer) { take(event) }
        }
        if closeAtEnd, reader.endsAtClose { take(.end) }
        return read
    }

    @Test("a length-framed response: the head forwarded without hop-by-hop fields and units, the body as it came")
    func lengthFramed() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: a\r\nTollgate-Units: tokens=3\r\n"
            + "Proxy-Thing: b\r\nContent-Type: text/plain\r\n\r\nhello"
        for split in [1, 2, 5, 1_000] {
            let read = try Self.read(text, split: split)
            #expect(read.heads == ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n"])
            #expect(read.forwarded == "hello" && read.dataBytes == 5 && read.ended && read.keepAlive)
            #expect(read.units == ["tokens=3"])
        }
    }

    @Test("a chunked body passes through with its framing and trailers, or as data only for a client that cannot take chunks")
    func chunked() throws {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n"
            + "4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n"
        for split in [1, 3, 8, 1_000] {
            let passed = try Self.read(text, split: split)
            #expect(passed.heads == ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"])
            #expect(passed.forwarded == "4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n")
            #expect(passed.dataBytes == 9 && passed.ended)
            let dechunked = try Self.read(text, split: split, dechunk: true)
            #expect(dechunked.heads == ["HTTP/1.0 200 OK\r\n"])
            #expect(dechunked.forwarded == "wikipedia" && dechunked.dataBytes == 9 && dechunked.ended)
        }
    }

    @Test("no body for a HEAD, 204 or 304; 1xx heads come first; a body without framing ends at the close")
    func framingRules() throws {
        let head = try Self.read("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", split: 4, toHEAD: true)
        #expect(head.ended && head.forwarded.isEmpty && head.heads == ["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"])
        let noContent = try Self.read("HTTP/1.1 204 No Content\r\n\r\n", split: 4)
        #expect(noContent.ended && noContent.heads == ["HTTP/1.1 204 No Content\r\n"])
        let continued = try Self.read("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", split: 7)
        #expect(continued.informational == [100] && continued.forwarded == "ok" && continued.ended)
        let open = try Self.read("HTTP/1.0 200 OK\r\n\r\nuntil the end", split: 5, closeAtEnd: true)
        #expect(open.forwarded == "until the end" && open.ended && !open.keepAlive)
        let old = try Self.read("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", split: 5)
        #expect(old.ended && !old.keepAlive)
        let closing = try Self.read("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", split: 5)
        #expect(closing.ended && !closing.keepAlive && closing.heads == ["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"])
    }

    @Test("malformed heads, differing lengths, bad chunks, oversized heads and bytes after the response are errors")
    func errors() {
        let cases: [(String, UpstreamResponseReader.ReadError)] = [
            ("HTTP/2 200 OK\r\n\r\n", .malformedHead),
            ("HTTP/1.1 2x0 OK\r\n\r\n", .malformedHead),
            ("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", .malformedHead),
            ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", .badContentLength),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", .badContentLength),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", .malformedChunk),
            ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab", .bytesAfterResponse),
            ("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 2_000) + "\r\n\r\n", .headTooLarge),
        ]
        for (text, error) in cases {
            #expect(throws: error) { _ = try Self.read(text, split: 3) }
        }
    }

    @Test("a paid response's kept fields are the forwarded ones, trimmed")
    func fields() throws {
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A:  one \r\nConnection: x-b\r\nX-B: two\r\nX-C:three\r\n\r\nok")
        var reader = UpstreamResponseReader(maxHeadBytes: 1_024)
        reader.expectResponse(toHEAD: false, dechunk: false)
        guard case .head(let head)? = try reader.next(&buffer) else {
            Issue.record("no head")
            return
        }
        var fields: [String] = []
        head.forEachField { fields.append("\($0)=\($1)") }
        #expect(fields == ["X-A=one", "X-C=three"])
        var out = ByteBuffer()
        out.writeResponseHead(head, http10: false, keepFraming: false, replacing: ["x-c"])
        #expect(String(buffer: out) == "HTTP/1.1 200 OK\r\nX-A:  one \r\n")
    }
}
