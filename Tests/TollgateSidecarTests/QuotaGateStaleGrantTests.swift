import Foundation
import Testing
import TollgateCore
import TollgateSidecar
import TollgateTestSupport
import TollgateWire

/// A lease transport whose answers the test releases one at a time, so the order of a grant and a
/// pushed update can be chosen exactly (the race is too narrow to force through a real collector).
private final class HeldTransport: LeaseTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var held: [(Tollgate_V1_LeaseRequest, CheckedContinuation<Tollgate_V1_Envelope, any Error>)] = []
    private(set) var returned: [Tollgate_V1_LeaseReturn] = []

    func request(_ body: Tollgate_V1_Envelope.OneOf_Body, timeout: Duration) async throws -> Tollgate_V1_Envelope {
        guard case .leaseRequest(let request) = body else { throw CancellationError() }
        return try await withCheckedThrowingContinuation { continuation in
            lock.withLock { held.append((request, continuation)) }
        }
    }

    func send(_ body: Tollgate_V1_Envelope.OneOf_Body) {
        if case .leaseReturn(let giveBack) = body { lock.withLock { returned.append(giveBack) } }
    }

    var heldCount: Int { lock.withLock { held.count } }
    var returnedUnits: UInt64 { lock.withLock { returned.reduce(0) { $0 + $1.unusedUnits } } }

    /// Answers the `index`-th request still held with a grant of `units`, `used` and `unleased`.
    func answer(_ index: Int, units: UInt64, used: UInt64, unleased: UInt64, version: UInt64) {
        let (request, continuation) = lock.withLock { held.remove(at: index) }
        var grant = Tollgate_V1_LeaseGrant()
        grant.keyID = request.keyID
        grant.feature = request.feature
        grant.periodID = request.periodID
        grant.units = units
        grant.used = used
        grant.remainingUnleased = unleased
        grant.leaseID = units > 0 ? "7" : ""
        grant.expiresAtUnixMs = Timestamp(seconds: 1_795_478_400).milliseconds
        grant.version = version
        var envelope = Tollgate_V1_Envelope()
        envelope.body = .leaseGrant(grant)
        continuation.resume(returning: envelope)
    }
}

@Suite("Quota gate: a grant computed before a pushed change")
struct QuotaGateStaleGrantTests {
    static let keyID = String(repeating: "ab", count: 32)
    static let plan = Plan(name: "daily", features: [.apiCall: .metered(MeteredFeature(limit: 100, reset: .day))])

    /// A gate over a transport the test answers, and a call of the key to it.
    fileprivate static func gate() -> (TestClock, HeldTransport, QuotaGate, GateRequest) {
        let clock = TestClock(Timestamp(seconds: 1_795_474_800))
        let transport = HeldTransport()
        let gate = QuotaGate(transport: transport, clock: clock) { ("sc-1", 1) }
        return (clock, transport, gate, GateRequest(keyID: Self.keyID, plan: Self.plan.resolved(), feature: .apiCall))
    }

    /// The key's plan (its limits) changed, as the collector pushes it.
    static func planChanged(version: UInt64) -> Tollgate_V1_QuotaUpdate {
        var update = Tollgate_V1_QuotaUpdate()
        update.kind = .planChanged
        update.keyID = Self.keyID
        update.plan = "daily"
        update.version = version
        return update
    }

    func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw TestSupportError("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    @Test("units granted under the old limit never admit a call after the change reached the sidecar")
    func staleGrantIsHandedBack() async throws {
        let (clock, transport, gate, request) = Self.gate()

        // A call waits for the key's first lease; the collector reads the old limit (100) ...
        #expect(gate.decide(request, at: clock.now()) == nil)
        let verdict = Task { await gate.waitForDecision(request, at: clock.now()) }
        try await waitUntil("the first lease request") { transport.heldCount == 1 }

        // ... but before its grant arrives, the limit is lowered below what is used and the change
        // is pushed: the gate starts the key afresh, and the waiting call asks again.
        let update = Self.planChanged(version: 2)
        #expect(gate.apply(update, at: clock.now()))
        try await waitUntil("the second lease request") { transport.heldCount == 2 }

        // The grant cut before the change (40 units) arrives now: it must not admit anything.
        transport.answer(0, units: 40, used: 80, unleased: 0, version: 1)
        try await Task.sleep(for: .milliseconds(50))
        // The second request, answered after the change: nothing left.
        transport.answer(0, units: 0, used: 80, unleased: 0, version: 2)

        #expect(await verdict.value.isAdmitted == false)
        #expect(gate.decide(request, at: clock.now())?.isAdmitted != true)
        try await waitUntil("the stale units handed back") { transport.returnedUnits == 40 }
        // The stale request went out again, to be answered from the new figures.
        try await waitUntil("the request asked again") { transport.heldCount == 1 }
        transport.answer(0, units: 0, used: 80, unleased: 0, version: 2)
        #expect(gate.decide(request, at: clock.now())?.isAdmitted != true)
    }

    @Test("a plan change that names a feature exhausted: the next call is refused here, with no lease round trip")
    func pushedExhaustionRefusesWithoutAsking() async throws {
        let (clock, transport, gate, request) = Self.gate()
        let periodID = ResetInterval.day.period(containing: clock.now()).id

        // The key is served from a lease of 50.
        #expect(gate.decide(request, at: clock.now()) == nil)
        let first = Task { await gate.waitForDecision(request, at: clock.now()) }
        try await waitUntil("the first lease request") { transport.heldCount == 1 }
        transport.answer(0, units: 50, used: 0, unleased: 50, version: 1)
        #expect(await first.value.isAdmitted)

        // The limit is lowered below what is used; the change says api_call is spent this period.
        var update = Self.planChanged(version: 2)
        var spent = Tollgate_V1_ExhaustedFeature()
        spent.feature = "api_call"
        spent.periodID = periodID
        update.exhausted = [spent]
        #expect(gate.apply(update, at: clock.now()))
        try await waitUntil("the lease handed back") { transport.returnedUnits == 49 }

        // Refused at once, and nothing asked of the collector (until the exhausted recheck).
        let verdict = gate.decide(request, at: clock.now())
        #expect(verdict != nil && verdict?.isAdmitted == false)
        #expect(transport.heldCount == 0)

        // A later change that names nothing (the limit restored) starts the key afresh: it asks.
        update.version = 3
        update.exhausted = []
        #expect(gate.apply(update, at: clock.now()))
        #expect(gate.decide(request, at: clock.now()) == nil)
        try await waitUntil("a lease request after the restore") { transport.heldCount == 1 }
    }
}
