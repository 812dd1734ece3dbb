import NIOCore
import NIOHTTP1
import Testing
@testable import TollgateSidecar

/// The client side's reader: what it hands on, however the bytes are split, and what it refuses.
@Suite("ProxyRequestReader: requests read in place, strictly")
struct ProxyRequestReaderTests {
    enum Seen: Equatable {
        case head(method: String, uri: String, http11: Bool, keepAlive: Bool, key: String?, forwarded: String)
        case body(String)
        case end
    }

    static func reader(keyHeader: String? = nil) -> ProxyRequestReader {
        ProxyRequestReader(maxFieldBytes: 256, maxListBytes: 1_024, keyHeader: keyHeader)
    }

    /// Reads `text` fed in pieces of `split` bytes; bodies are joined between heads and ends.
    static func read(_ text: String, split: Int, keyHeader: String? = nil) throws -> [Seen] {
        var reader = Self.reader(keyHeader: keyHeader)
        var seen: [Seen] = []
        var body = ""
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            var buffer = ByteBuffer(bytes: bytes[offset..<min(offset + split, bytes.count)])
            offset += split
            while let event = try reader.next(&buffer) {
                switch event {
                case .head(let head):
                    var forwarded = ByteBuffer()
                    forwarded.writeUpstreamRequestHead(head, clientIP: "10.0.0.1", defaultHost: "up:80")
                    seen.append(.head(method: head.method.rawValue, uri: head.uri, http11: head.version == .http1_1,
                                      keepAlive: head.isKeepAlive, key: head.apiKey, forwarded: String(buffer: forwarded)))
                case .body(let part): body += String(buffer: part)
                case .end:
                    if !body.isEmpty { seen.append(.body(body)) }
                    body = ""
                    seen.append(.end)
                }
            }
        }
        return seen
    }

    static let pipelined =
        "\r\nGET /a?x=1 HTTP/1.1\r\nHost: api.example\r\nAuthorization: Bearer  k1\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
        + "X-Forwarded-For: 1.2.3.4\r\nKeep-Alive: 5\r\nX-Keep: yes\r\n\r\n"
        + "POST /b HTTP/1.1\r\nX-API-Key: k2\r\nContent-Length: 5\r\nPAYMENT-SIGNATURE: abc\r\n\r\nhello"
        + "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer-X: t\r\n\r\n"
        + "HEAD /d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"

    static let expected: [Seen] = [
        .head(method: "GET", uri: "/a?x=1", http11: true, keepAlive: true, key: "k1", forwarded:
            "GET /a?x=1 HTTP/1.1\r\nHost: api.example\r\nAuthorization: Bearer  k1\r\nX-Keep: yes\r\n"
            + "x-forwarded-for: 1.2.3.4, 10.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: api.example\r\n\r\n"),
        .end,
        .head(method: "POST", uri: "/b", http11: true, keepAlive: true, key: "k2", forwarded:
            "POST /b HTTP/1.1\r\nX-API-Key: k2\r\nContent-Length: 5\r\n"
            + "x-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: http\r\nhost: up:80\r\n\r\n"),
        .body("hello"), .end,
        .head(method: "PUT", uri: "/c", http11: true, keepAlive: true, key: nil, forwarded:
            "PUT /c HTTP/1.1\r\nHost: h\r\ntransfer-encoding: chunked\r\n"
            + "x-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\n\r\n"),
        .body("abc0123456789abcdef"), .end,
        .head(method: "HEAD", uri: "/d", http11: false, keepAlive: true, key: nil, forwarded:
            "HEAD /d HTTP/1.1\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: http\r\nhost: up:80\r\n\r\n"),
        .end,
    ]

    @Test("pipelined requests of every framing read the same whatever the read sizes; the forwarded head drops hop-by-hop fields, the payment and X-Forwarded-*")
    func pipelinedAtEverySplit() throws {
        for split in [1, 2, 3, 7, 64, 10_000] {
            #expect(try Self.read(Self.pipelined, split: split) == Self.expected, "split \(split)")
        }
    }

    @Test("a configured key header is taken when no Bearer or X-API-Key is sent; Bearer wins over it")
    func customKeyHeader() throws {
        let custom = try Self.read("GET / HTTP/1.1\r\nX-Tenant-Key: t1\r\n\r\n", split: 100, keyHeader: "X-Tenant-Key")
        guard case .head(_, _, _, _, let key, _) = custom.first else { Issue.record("no head"); return }
        #expect(key == "t1")
        let both = try Self.read("GET / HTTP/1.1\r\nx-tenant-key: t1\r\nauthorization: bearer b1\r\n\r\n", split: 100, keyHeader: "X-Tenant-Key")
        guard case .head(_, _, _, _, let winner, _) = both.first else { Issue.record("no head"); return }
        #expect(winner == "b1")
    }

    @Test("malformed requests are refused", arguments: [
        "GET / HTTP/1.1\nHost: a\r\n\r\n",                           // bare LF
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",                        // space before the colon
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",              // obsolete line folding
        "GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n",                       // control character in a value
        "GET / HTTP/2.0\r\n\r\n",                                    // not HTTP/1.x
        "GET /  HTTP/1.1\r\n\r\n",                                   // two spaces
        "G(T / HTTP/1.1\r\n\r\n",                                    // not a token
        "CONNECT a:443 HTTP/1.1\r\n\r\n",                            // no tunnels
        "POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n",             // length not digits
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",       // chunked not last
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",     // chunked in 1.0
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
        "GET / HTTP/1.1\r\nHost: a\rX\r\n\r\n",                      // CR alone
    ])
    func refusesMalformed(_ text: String) {
        #expect(throws: ProxyRequestReader.ReadError.malformed) { _ = try Self.read(text, split: 3) }
    }

    @Test("a field, the fields, or a head without its end beyond the limits is too large")
    func tooLarge() {
        let longField = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 300) + "\r\n\r\n"
        #expect(throws: ProxyRequestReader.ReadError.headTooLarge) { _ = try Self.read(longField, split: 1_000) }
        let manyFields = "GET / HTTP/1.1\r\n" + String(repeating: "X-Field: " + String(repeating: "b", count: 100) + "\r\n", count: 12) + "\r\n"
        #expect(throws: ProxyRequestReader.ReadError.headTooLarge) { _ = try Self.read(manyFields, split: 50) }
        let endless = "GET /" + String(repeating: "c", count: 20_000)
        #expect(throws: ProxyRequestReader.ReadError.headTooLarge) { _ = try Self.read(endless, split: 4_096) }
    }
}
