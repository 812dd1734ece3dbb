#if canImport(Glibc)
import Glibc
#endif
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TollgateTestSupport

/// `tools/stripe/stripe_server.py` (the local stand-in for Stripe's meter events API) on a free
/// port, for the tests' lifetime: real HTTP and the same strict validation the system tests use.
///
/// Threading: `Sendable`; `stop()` kills the process.
final class FakeStripe: Sendable {
    static let secretKey = "sk_test_swift_tests"
    let baseURL: String
    private let process: Process

    /// Starts the server and waits (bounded) until it answers `/healthz`.
    init() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tools/stripe/stripe_server.py")
        let port = try FreePort.make()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, "--listen", "127.0.0.1:\(port)", "--secret-key", Self.secretKey]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        self.process = process
        self.baseURL = "http://127.0.0.1:\(port)"
        for _ in 0..<200 {
            if (try? await self.get("/healthz")) != nil { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        self.stop()
        throw TestSupportError("the fake Stripe server did not start")
    }

    /// Kills the server (SIGKILL: Foundation starts children with SIGTERM blocked) and waits, bounded, for it to go.
    func stop() {
        guard self.process.isRunning else { return }
        kill(self.process.processIdentifier, SIGKILL)
        // Not waitUntilExit(): on Linux it spins a run loop at full CPU.
        for _ in 0..<500 where self.process.isRunning { usleep(10_000) }
    }

    /// `GET /_events`.
    func events() async throws -> (accepted: [[String: Any]], identifiers: [String], duplicates: Int) {
        let object = try await self.get("/_events")
        return ((object["events"] as? [[String: Any]]) ?? [], (object["identifiers"] as? [String]) ?? [], (object["duplicates"] as? Int) ?? 0)
    }

    /// The accepted values summed by `(customer, event name)`.
    func totals() async throws -> [String: UInt64] {
        var totals: [String: UInt64] = [:]
        for event in try await self.events().accepted {
            let payload = event["payload"] as? [String: Any] ?? [:]
            let key = "\(payload["stripe_customer_id"] as? String ?? "?")/\(event["event_name"] as? String ?? "?")"
            totals[key, default: 0] += UInt64(payload["value"] as? String ?? "0") ?? 0
        }
        return totals
    }

    /// Makes the next `count` valid requests fail with `status`.
    func failNext(_ count: Int, status: Int = 500, retryAfter: Int? = nil) async throws {
        var body: [String: Any] = ["fail_next": count, "status": status]
        if let retryAfter { body["retry_after"] = retryAfter }
        _ = try await self.post("/_control", JSONSerialization.data(withJSONObject: body))
    }

    private func get(_ path: String) async throws -> [String: Any] {
        let (data, _) = try await URLSession.shared.data(from: URL(string: self.baseURL + path)!)
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    private func post(_ path: String, _ body: Data) async throws -> [String: Any] {
        var request = URLRequest(url: URL(string: self.baseURL + path)!)
        request.httpMethod = "POST"
        request.httpBody = body
        let (data, _) = try await URLSession.shared.data(for: request)
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }
}
