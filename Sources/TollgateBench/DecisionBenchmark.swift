import ArgumentParser
import Foundation
import TollgateCore
import TollgateSidecar
import TollgateWire

/// `tollgate-bench decisions`: the sidecar's local quota decision (`QuotaGate.decide`) for cached
/// keys on one thread, and the gate's memory per cached key.
///
/// Leases come from an in-process transport that grants what is asked at once, so the figure is
/// the decision alone, never a network round trip (the system tests measure how rarely decisions
/// wait for one). scripts/bench-decisions.sh sets it beside a Redis round trip measured in the same run.
struct DecisionBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decisions",
        abstract: "Measure QuotaGate decisions/s and ns/decision on one thread, and bytes per cached key."
    )

    @Option(help: "Key counts to measure, comma separated.")
    var keys = "1,100000"

    @Option(help: "Decisions per measurement.")
    var count = 5_000_000

    func run() async throws {
        for keyCount in keys.split(separator: ",").compactMap({ Int($0) }).filter({ $0 > 0 }) {
            try await measure(keyCount: keyCount)
        }
    }

    private func measure(keyCount: Int) async throws {
        let plan = Plan(name: "bench", features: [
            .apiCall: .metered(MeteredFeature(limit: 1 << 40, reset: .month)),
        ]).resolved()
        var configuration = QuotaGate.Configuration()
        configuration.initialRequest = 1 << 30
        configuration.maxRequest = 1 << 30
        let heapBefore = Self.heapBytes()
        let gate = QuotaGate(configuration: configuration, transport: InstantLeases()) { ("bench", 1) }
        let ids = (0..<keyCount).map { String(format: "%064x", $0) }
        let requests = ids.map { GateRequest(keyID: $0, plan: plan, feature: .apiCall) }
        for request in requests where gate.decide(request) == nil {
            _ = await gate.waitForDecision(request)
        }
        // Let the first grants' tasks finish so every key holds its lease.
        for request in requests where !(gate.decide(request)?.isAdmitted ?? false) {
            _ = await gate.waitForDecision(request)
        }
        let heapAfter = Self.heapBytes()
        // The ids and requests arrays are the benchmark's own; the plan is shared by every request.
        let own = ids.count * (64 + 32) + requests.count * MemoryLayout<GateRequest>.stride
        let perKey = max(0, heapAfter - heapBefore - own) / keyCount

        var admitted = 0
        let start = ContinuousClock.now
        var index = 0
        for _ in 0..<count {
            if case .admit? = gate.decide(requests[index]) { admitted += 1 }
            index += 1
            if index == requests.count { index = 0 }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard admitted == count else {
            throw ValidationError("expected every decision admitted, got \(admitted) of \(count)")
        }
        print("keys=\(keyCount) decisions=\(count) seconds=\(String(format: "%.3f", seconds))"
              + " decisions_per_second=\(Int(Double(count) / seconds))"
              + " ns_per_decision=\(String(format: "%.1f", seconds * 1e9 / Double(count)))"
              + " gate_bytes_per_key=\(keyCount >= 10_000 ? String(perKey) : "n/a")")
    }

    /// Resident memory of the process (Linux /proc/self/statm), for per-key growth over many keys.
    static func heapBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Grants every lease request in full at once, with a distant expiry: a benchmark fixture that
/// takes the network out of the measurement.
struct InstantLeases: LeaseTransport {
    func request(_ body: Tollgate_V1_Envelope.OneOf_Body, timeout: Duration) async throws -> Tollgate_V1_Envelope {
        guard case .leaseRequest(let request) = body else { throw CancellationError() }
        var grant = Tollgate_V1_LeaseGrant()
        grant.keyID = request.keyID
        grant.feature = request.feature
        grant.periodID = request.periodID
        grant.units = request.unitsWanted
        grant.leaseID = "1"
        grant.expiresAtUnixMs = Int64.max / 2_000_000
        grant.remainingUnleased = 1 << 40
        grant.holders = 1
        var envelope = Tollgate_V1_Envelope()
        envelope.body = .leaseGrant(grant)
        return envelope
    }

    func send(_ body: Tollgate_V1_Envelope.OneOf_Body) {}
}
