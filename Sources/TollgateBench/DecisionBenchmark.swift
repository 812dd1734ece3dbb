import ArgumentParser
import Foundation
import TollgateCore
import TollgateSidecar
import TollgateTestSupport
import TollgateWire
import TollgateZeroMQ

/// `tollgate-bench decisions`: the sidecar's local quota decision (`QuotaGate.decide`) for cached
/// keys on one thread, and the sidecar's memory per cached key: the gate's, and the key
/// directory's (`KeyDirectory`, filled through `apply` with what a collector's `KeyInfo` carries).
///
/// Leases come from an in-process transport that grants what is asked at once, so the figure is
/// the decision alone, never a network round trip (the system tests measure how rarely decisions
/// wait for one). scripts/bench-decisions.sh sets it beside a Redis round trip measured in the same run.
struct DecisionBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decisions",
        abstract: "Measure QuotaGate decisions/s and ns/decision on one thread, and gate and directory bytes per cached key."
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
        let directoryPerKey = keyCount >= 10_000 ? String(try directoryBytesPerKey(ids: ids, plan: Self.directoryPlan)) : "n/a"
        print("keys=\(keyCount) decisions=\(count) seconds=\(String(format: "%.3f", seconds))"
              + " decisions_per_second=\(Int(Double(count) / seconds))"
              + " ns_per_decision=\(String(format: "%.1f", seconds * 1e9 / Double(count)))"
              + " gate_bytes_per_key=\(keyCount >= 10_000 ? String(perKey) : "n/a")"
              + " directory_bytes_per_key=\(directoryPerKey)")
    }

    /// A plan as a directory holds it: two metered features (one with overage and a spend cap), a
    /// switch and a rate tier.
    static let directoryPlan = Plan(name: "pro", features: [
        .apiCall: .metered(MeteredFeature(limit: 100_000, reset: .month)),
        "tokens": .metered(MeteredFeature(
            limit: 5_000_000, unit: "token", reset: .day,
            policy: .overage(price: UnitPrice(price: Money(atomicUnits: 20, asset: "USDC"), perUnits: 1_000),
                             spendCap: Money(atomicUnits: 50_000_000, asset: "USDC"), fallback: .block)
        )),
        "export": .boolean(enabled: true),
    ], rateTier: RateTier(name: "burst", capacity: 50, refill: RefillRate(tokens: 10, perSeconds: 1))).resolved()

    /// Resident growth per key of a `KeyDirectory` holding `ids`, every key on `plan` with the
    /// effective-plan JSON and fields a collector sends (names like `key-00042`). The request channel
    /// points at a port nobody listens on; `apply` never uses it.
    private func directoryBytesPerKey(ids: [String], plan: EffectivePlan) throws -> Int {
        let context = try ZMQContext()
        defer { context.close() }
        let channel = try CollectorRequestChannel(context: context, endpoints: ["tcp://127.0.0.1:\(try FreePort.make())"])
        defer { channel.stop() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = try encoder.encode(plan)
        // The infos are built first, so the measurement holds the directory alone.
        let infos: [Tollgate_V1_KeyInfo] = ids.enumerated().map { index, id in
            var info = Tollgate_V1_KeyInfo()
            info.keyID = id
            info.known = true
            info.name = String(format: "key-%05d", index)
            info.plan = plan.planName
            info.effectivePlanJson = json
            info.version = 1
            return info
        }
        let before = Self.heapBytes()
        let directory = KeyDirectory(channel: channel)
        for info in infos { directory.apply(info) }
        let after = Self.heapBytes()
        guard case .known(let key)? = directory.cached(ids[ids.count / 2]), key.effectivePlan == plan else {
            throw ValidationError("the directory did not keep what was applied")
        }
        return withExtendedLifetime(directory) { max(0, after - before) / ids.count }
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
