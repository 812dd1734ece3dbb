import ArgumentParser
import Foundation
import TollgateCore
import TollgateSidecar
import TollgateTestSupport
import TollgateWire
import TollgateZeroMQ

/// `tollgate-bench decisions`: the sidecar's local quota decision (`QuotaGate.decide`) for cached
/// keys on one thread, and the sidecar's memory per cached key: the key directory's
/// (`KeyDirectory`, filled through `apply` with what a collector's `KeyInfo` carries) and the
/// gate's, which share one `KeyCache` as in a sidecar.
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
        let plan = GatePlan(Plan(name: "bench", features: [
            .apiCall: .metered(MeteredFeature(limit: 1 << 40, reset: .month)),
        ]).resolved())
        var configuration = QuotaGate.Configuration()
        configuration.initialRequest = 1 << 30
        configuration.maxRequest = 1 << 30
        let ids = (0..<keyCount).map { String(format: "%064x", $0) }
        // The benchmark's own arrays are made before measuring; a request shares its id's string.
        let requests = ids.map { GateRequest(keyID: $0, plan: plan, feature: .apiCall) }
        let infos = try Self.keyInfos(ids: ids, plan: Self.directoryPlan)
        let context = try ZMQContext()
        defer { context.close() }
        let channel = try CollectorRequestChannel(context: context, endpoints: ["tcp://127.0.0.1:\(try FreePort.make())"])
        defer { channel.stop() }

        // As in a sidecar: the directory knows every key (what a collector's KeyInfo carries), and
        // the gate holds a lease for each, in the one table they share.
        let before = MemorySample.take()
        let cache = KeyCache()
        let directory = KeyDirectory(channel: channel, cache: cache)
        for info in infos { directory.apply(info) }
        let known = MemorySample.take()
        let gate = QuotaGate(configuration: configuration, transport: InstantLeases(), cache: cache) { ("bench", 1) }
        for request in requests where gate.decide(request) == nil {
            _ = await gate.waitForDecision(request)
        }
        // Let the first grants' tasks finish so every key holds its lease.
        for request in requests where !(gate.decide(request)?.isAdmitted ?? false) {
            _ = await gate.waitForDecision(request)
        }
        let after = MemorySample.take()
        guard case .known(let key)? = directory.cached(ids[ids.count / 2]), key.effectivePlan == Self.directoryPlan,
              cache.count == keyCount, gate.cachedKeys == keyCount
        else {
            throw ValidationError("the directory and the gate do not share one row per key")
        }

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
        func perKey(_ from: MemorySample, _ to: MemorySample, _ bytes: KeyPath<MemorySample, Int>) -> String {
            keyCount >= 10_000 ? String(max(0, to[keyPath: bytes] - from[keyPath: bytes]) / keyCount) : "n/a"
        }
        print("keys=\(keyCount) decisions=\(count) seconds=\(String(format: "%.3f", seconds))"
              + " decisions_per_second=\(Int(Double(count) / seconds))"
              + " ns_per_decision=\(String(format: "%.1f", seconds * 1e9 / Double(count)))"
              + " bytes_per_key=\(perKey(before, after, \.resident))"
              + " gate_bytes_per_key=\(perKey(known, after, \.resident))"
              + " directory_bytes_per_key=\(perKey(before, known, \.resident))")
        withExtendedLifetime((directory, gate, infos)) {}
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

    /// What a collector's `KeyInfo` carries for each of `ids`, every key on `plan`, with the
    /// effective-plan JSON and names like `key-00042`.
    private static func keyInfos(ids: [String], plan: EffectivePlan) throws -> [Tollgate_V1_KeyInfo] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = try encoder.encode(plan)
        return ids.enumerated().map { index, id in
            var info = Tollgate_V1_KeyInfo()
            info.keyID = id
            info.known = true
            info.name = String(format: "key-%05d", index)
            info.plan = plan.planName
            info.effectivePlanJson = json
            info.version = 1
            return info
        }
    }
}

/// The process's resident memory (Linux `/proc/self/statm`): what the sidecar costs the machine,
/// including memory freed but not given back.
struct MemorySample {
    var resident: Int

    static func take() -> MemorySample {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return MemorySample(resident: 0) }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return MemorySample(resident: 0) }
        return MemorySample(resident: pages * Int(sysconf(Int32(_SC_PAGESIZE))))
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
