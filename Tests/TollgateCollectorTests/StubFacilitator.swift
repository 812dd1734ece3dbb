#if canImport(Glibc)
import Glibc
#endif
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TollgateTestSupport

/// An x402 facilitator over real HTTP that says yes to every `/verify` and `/settle` and counts
/// them (`GET /_calls`): for coordinator tests that need to know whether the facilitator was asked,
/// not whether a signature is good (tools/facilitator checks those, in the system tests).
///
/// Threading: `Sendable`; `stop()` kills the process.
final class StubFacilitator: Sendable {
    static let payer = "0x857b06519E91e3A54538791bDbb0E22373e36b66"
    static let transaction = "0x" + String(repeating: "5e", count: 32)
    let baseURL: String
    private let process: Process

    private static let script = """
    import json, sys
    from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
    calls = {"verify": 0, "settle": 0}
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args): pass
        def answer(self, value):
            body = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def do_GET(self):
            self.answer(calls if self.path == "/_calls" else {"kinds": [{"x402Version": 2, "scheme": "exact", "network": "eip155:84532"}]})
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.path == "/verify":
                calls["verify"] += 1
                self.answer({"isValid": True, "payer": sys.argv[2]})
            else:
                calls["settle"] += 1
                self.answer({"success": True, "transaction": sys.argv[3], "network": "eip155:84532", "payer": sys.argv[2]})
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
    """

    /// Starts the stub and waits (bounded) until it answers.
    init() async throws {
        let port = try FreePort.make()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script, String(port), Self.payer, Self.transaction]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        self.process = process
        self.baseURL = "http://127.0.0.1:\(port)"
        for _ in 0..<200 {
            if (try? await self.calls()) != nil { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        self.stop()
        throw TestSupportError("the stub facilitator did not start")
    }

    /// How many `/verify` and `/settle` calls it answered: `[verify, settle]`.
    func calls() async throws -> [Int] {
        let (data, _) = try await URLSession.shared.data(from: URL(string: self.baseURL + "/_calls")!)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Int] ?? [:]
        return [object["verify"] ?? -1, object["settle"] ?? -1]
    }

    /// Kills the stub (SIGKILL, as FakeStripe does) and waits, bounded, for it to go.
    func stop() {
        guard self.process.isRunning else { return }
        kill(self.process.processIdentifier, SIGKILL)
        for _ in 0..<500 where self.process.isRunning { usleep(10_000) }
    }
}
