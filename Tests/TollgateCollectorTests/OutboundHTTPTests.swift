#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOHTTP1
import Testing
import TollgateTestSupport
@testable import TollgateCollector

/// `OutboundHTTP` against a real HTTP/1.1 server (Python's, in a child process): answers, the body
/// cap, the deadline, redirects left alone, bad URLs, a closed port, and kept-alive connections.
@Suite("OutboundHTTP: the collector's HTTP client, over real sockets")
struct OutboundHTTPTests {
    private static let script = """
    import json, sys, time
    from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
    peers = set()
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *args): pass
        def send(self, status, body, extra=()):
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            for name, value in extra: self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        def do_GET(self):
            peers.add(self.client_address[1])
            if self.path == "/big": self.send(200, b"x" * (2 << 20))
            elif self.path == "/slow":
                time.sleep(2)
                self.send(200, b"{}")
            elif self.path == "/redirect": self.send(302, b"{}", [("location", "/ok")])
            elif self.path == "/peers": self.send(200, json.dumps(len(peers)).encode())
            else: self.send(200, b'{"ok": true}', [("retry-after", "7")])
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send(201, body)
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
    """

    private func withServer(_ body: (String) async throws -> Void) async throws {
        let port = try FreePort.make()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script, String(port)]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let base = "http://127.0.0.1:\(port)"
        var up = false
        for _ in 0..<200 {
            if case .success = await OutboundHTTP.get(base + "/ok", timeout: .seconds(1)) {
                up = true
                break
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        try #require(up, "the test server did not start")
        try await body(base)
    }

    @Test("an answer comes back whole, with status and headers; a POST body goes out as given")
    func answers() async throws {
        try await withServer { base in
            let got = try await OutboundHTTP.get(base + "/ok", timeout: .seconds(5)).get()
            #expect(got.status == 200)
            #expect(got.headers.first(name: "retry-after") == "7")
            #expect(String(decoding: got.body, as: UTF8.self) == #"{"ok": true}"#)
            let sent = Array(#"{"x402Version":2}"#.utf8)
            let posted = try await OutboundHTTP.post(base + "/echo", headers: ["content-type": "application/json"], body: sent,
                                                     timeout: .seconds(5)).get()
            #expect(posted.status == 201)
            #expect(posted.body == sent)
        }
    }

    @Test("a body over the cap is refused; a slow answer hits the deadline; a redirect is not followed")
    func bounds() async throws {
        try await withServer { base in
            #expect(await OutboundHTTP.get(base + "/big", timeout: .seconds(5), maxBody: 1 << 20) == .failure(.tooLarge))
            let began = ContinuousClock.now
            #expect(await OutboundHTTP.get(base + "/slow", timeout: .milliseconds(300)) == .failure(.timeout))
            #expect(ContinuousClock.now - began < .milliseconds(1_500))
            let redirect = try await OutboundHTTP.get(base + "/redirect", timeout: .seconds(5)).get()
            #expect(redirect.status == 302)
        }
    }

    @Test("a bad URL and a port nobody listens on are failures, not crashes")
    func failures() async throws {
        #expect(await OutboundHTTP.get("ftp://127.0.0.1/x", timeout: .seconds(1)) == .failure(.badURL))
        #expect(await OutboundHTTP.get("not a url", timeout: .seconds(1)) == .failure(.badURL))
        let closed = try FreePort.make()
        #expect(await OutboundHTTP.get("http://127.0.0.1:\(closed)/", timeout: .seconds(2)) == .failure(.unreachable))
    }

    @Test("calls one after another share one kept-alive connection")
    func keptAlive() async throws {
        try await withServer { base in
            // The server counts the client ports it has seen; readiness polling may have used one.
            let before = try Self.count(await OutboundHTTP.get(base + "/peers", timeout: .seconds(5)).get())
            for _ in 0..<20 { _ = try await OutboundHTTP.post(base + "/echo", headers: [:], body: [1], timeout: .seconds(5)).get() }
            let after = try Self.count(await OutboundHTTP.get(base + "/peers", timeout: .seconds(5)).get())
            #expect(after == before)
        }
    }

    private static func count(_ answer: OutboundHTTP.Answer) -> Int {
        Int(String(decoding: answer.body, as: UTF8.self)) ?? -1
    }
}

extension OutboundHTTP.Answer: Equatable {
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body
    }
}
