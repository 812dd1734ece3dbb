import Foundation
import Testing
import TollgateCore
@testable import TollgateSidecar
import TollgateTestSupport
import TollgateWire
import TollgateZeroMQ

/// The sidecar's key table (`KeyTable`, `CompactKeyID`) and the one row per key that the key
/// directory and the quota gate share (`KeyCache`).
@Suite("Key cache")
struct KeyCacheTests {
    static let plan = Plan(name: "bench", features: [
        .apiCall: .metered(MeteredFeature(limit: 1_000, reset: .day)),
        "export": .boolean(enabled: false),
    ]).resolved()

    static func hexID(_ n: Int) -> String { String(format: "%064x", n) }

    @Test("a table finds every key it holds, and none it does not, through inserts and removals")
    func tableInsertsAndRemoves() {
        var table = KeyTable<Int>()
        let count = 5_000
        for n in 0..<count { _ = table.insert(n, for: CompactKeyID(Self.hexID(n))) }
        #expect(table.count == count)
        for n in 0..<count {
            guard let position = table.position(of: CompactKeyID(Self.hexID(n))) else {
                Issue.record("key \(n) lost")
                return
            }
            #expect(table[position] == n)
        }
        #expect(table.position(of: CompactKeyID(Self.hexID(count))) == nil)
        // Removing moves the last entry into the hole and shifts probe runs back: every key left
        // must still be found with its own value.
        var generator = SystemRandomNumberGenerator()
        let removed = Set((0..<count).shuffled(using: &generator).prefix(count / 2))
        for n in removed { #expect(table.remove(CompactKeyID(Self.hexID(n))) == n) }
        #expect(table.count == count - removed.count)
        for n in 0..<count {
            let position = table.position(of: CompactKeyID(Self.hexID(n)))
            if removed.contains(n) {
                #expect(position == nil)
            } else {
                #expect(position.map { table[$0] } == n)
            }
        }
        #expect(table.remove(CompactKeyID(Self.hexID(count))) == nil)
    }

    @Test("key ids: a hex digest is kept as its 32 bytes and given back exactly; other text stays text")
    func compactIDs() {
        let digest = "00ff" + String(repeating: "0123456789abcdef", count: 3) + "fedcba987654"
        #expect(CompactKeyID(digest).string == digest)
        #expect(CompactKeyID(digest) == CompactKeyID(digest))
        let upper = digest.uppercased()
        #expect(CompactKeyID(upper).string == upper)
        #expect(CompactKeyID(upper) != CompactKeyID(digest))
        #expect(CompactKeyID("anon:10.0.0.1").string == "anon:10.0.0.1")
        #expect(CompactKeyID(String(digest.dropLast()) + "g").string == String(digest.dropLast()) + "g")
    }

    @Test("a compiled plan finds features by name and keeps each metered feature's figures")
    func gatePlan() {
        let plan = GatePlan(Self.plan)
        let calls = GateRequest(keyID: Self.hexID(1), plan: plan, feature: .apiCall)
        let missing = GateRequest(keyID: Self.hexID(1), plan: plan, feature: "tokens")
        #expect(calls.rule >= 0 && missing.rule == -1)
        guard case .metered(let rule) = plan.rules[Int(calls.rule)] else {
            Issue.record("api_call is metered")
            return
        }
        #expect(rule.limit == 1_000 && rule.budget == 1_000 && rule.mode == .strict)
        #expect(plan.metered[Int(rule.index)].name == .apiCall)
        #expect(plan.quotaName(of: .apiCall) == "api_call" && plan.rateTierName == nil)
        #expect(GatePlan(Self.plan) == plan)
    }

    @Test("the directory and the gate share one row per key; each side leaving keeps the other's part")
    func sharedRows() async throws {
        let context = try ZMQContext()
        defer { context.close() }
        let channel = try CollectorRequestChannel(context: context, endpoints: ["tcp://127.0.0.1:\(try FreePort.make())"])
        defer { channel.stop() }
        let cache = KeyCache()
        let directory = KeyDirectory(channel: channel, cache: cache)
        let gate = QuotaGate(transport: GrantEverything(), cache: cache) { ("sc-test", 1) }
        let id = Self.hexID(7)
        var info = Tollgate_V1_KeyInfo()
        info.keyID = id
        info.known = true
        info.name = "k"
        info.plan = Self.plan.planName
        info.effectivePlanJson = try JSONEncoder().encode(Self.plan)
        info.version = 1
        directory.apply(info)
        guard case .known(let key)? = directory.cached(id), let plan = key.gatePlan else {
            Issue.record("the directory lost the key")
            return
        }
        #expect(cache.count == 1 && gate.cachedKeys == 0)

        // The gate decides on the directory's row: still one row.
        let request = GateRequest(keyID: id, plan: plan, feature: .apiCall)
        if gate.decide(request) == nil { _ = await gate.waitForDecision(request) }
        #expect(cache.count == 1 && gate.cachedKeys == 1)
        #expect(gate.balance(keyID: id, feature: .apiCall, at: gate.now()) != nil)
        guard case .refuse(let refusal)? = gate.decide(GateRequest(keyID: id, plan: plan, feature: "export")) else {
            Issue.record("export is off")
            return
        }
        #expect(refusal.reason == .forbidden)

        // The directory forgets the key: the gate's state stays (and so does the row).
        directory.invalidate(id)
        #expect(directory.cached(id) == nil)
        #expect(cache.count == 1 && gate.cachedKeys == 1)
        #expect(gate.decide(request)?.isAdmitted == true)

        // The directory learns it again, then the gate drops its state (a plan change): the
        // directory's answer stays.
        directory.apply(info)
        var update = Tollgate_V1_QuotaUpdate()
        update.keyID = id
        update.kind = .planChanged
        update.version = 2
        gate.apply(update, at: gate.now())
        #expect(cache.count == 1 && gate.cachedKeys == 0)
        #expect(gate.balance(keyID: id, feature: .apiCall, at: gate.now()) == nil)
        guard case .known? = directory.cached(id) else {
            Issue.record("the gate's drop took the directory's answer with it")
            return
        }

        // With neither side holding anything, the row goes.
        directory.invalidate(id)
        #expect(cache.count == 0)
    }

    @Test("a row (key id, directory answer, gate state with one slot inline) stays within 176 bytes")
    func rowSize() {
        // The figure the decision benchmark's bytes per key rest on (README, "Quota decisions"):
        // id 33 (+7), directory answer 33 (+3), plan/feature/share indices and extras 20, slot 80
        // (balance 41, flags and period 7, unleased and next request 16, last admission 4 (+4), rare 8).
        #expect(MemoryLayout<KeyTable<CachedKey>.Entry>.stride <= 176, "\(MemoryLayout<KeyTable<CachedKey>.Entry>.stride)")
        #expect(MemoryLayout<QuotaSlot>.size <= 80, "\(MemoryLayout<QuotaSlot>.size)")
        #expect(MemoryLayout<LeaseBalance>.size <= 41, "\(MemoryLayout<LeaseBalance>.size)")
    }

    @Test("a slot's last admission is 32-bit milliseconds whose difference is exact across the wrap")
    func lastAdmitWraps() {
        // Milliseconds modulo 2^32: a tick count past 2^32 ms wraps, and the idle time across the
        // wrap is still the true gap.
        let wrap = Int64(UInt32.max) + 1
        let before = (wrap - 5) * 1_000_000            // 5 ms before the wrap
        let after = (wrap + 15) * 1_000_000 + 999_999  // 15.999 ms after it
        let last = QuotaSlot.lastAdmitMilliseconds(before)
        let now = QuotaSlot.lastAdmitMilliseconds(after)
        #expect(last == UInt32.max - 4 && now == 15)
        #expect(QuotaSlot.idleMilliseconds(since: last, now: now) == 20)
        var slot = QuotaSlot(period: 0, initialRequest: 10)
        slot.lastAdmit = last
        #expect(slot.isIdle(forNanoseconds: 20_000_000, now: after))
        #expect(!slot.isIdle(forNanoseconds: 21_000_000, now: after))
        // Same instant: not idle for any positive threshold, idle for zero.
        #expect(!slot.isIdle(forNanoseconds: 1, now: before))
        #expect(slot.isIdle(forNanoseconds: 0, now: before))
        // A gap of 2^32 ms (about 49.7 days) or more is read modulo 2^32 ms (the documented limit).
        #expect(QuotaSlot.idleMilliseconds(since: 7, now: 7) == 0)
    }

    @Test("a slot's rare state is made only when set off its defaults, and copied on write")
    func slotRareState() {
        var slot = QuotaSlot(period: 0, initialRequest: 10)
        // What every grant to a strict slot sets: no rare state.
        slot.credits = 0
        slot.spentSinceFigures = 0
        slot.figuresAt = Timestamp(seconds: 1_800_000_000)
        slot.recheckAt = .min
        slot.retryAt = .min
        #expect(slot.rare == nil && slot.figuresAt == .min && slot.credits == 0)
        slot.recheckAt = Timestamp(seconds: 5)
        #expect(slot.rare != nil && slot.recheckAt == Timestamp(seconds: 5) && slot.retryAt == .min)
        slot.figuresAt = Timestamp(seconds: 6)
        #expect(slot.figuresAt == Timestamp(seconds: 6))
        var copy = slot
        copy.credits = 9
        copy.recheckAt = .min
        #expect(slot.credits == 0 && slot.recheckAt == Timestamp(seconds: 5))
        #expect(copy.credits == 9 && copy.recheckAt == .min && copy.figuresAt == Timestamp(seconds: 6))
        var optimistic = QuotaSlot(period: 0, initialRequest: 10)
        optimistic.keepFiguresTime()
        optimistic.figuresAt = Timestamp(seconds: 7)
        #expect(optimistic.figuresAt == Timestamp(seconds: 7))
    }

    @Test("the lease expiry margin is configuration, kept to the millisecond and saturating at 2^32 ms")
    func leaseMarginConfiguration() {
        var configuration = QuotaGate.Configuration()
        #expect(configuration.leaseExpiryMarginNanoseconds == 1_000_000_000)
        configuration.leaseExpiryMargin = .nanoseconds(2_500_999)
        #expect(configuration.leaseExpiryMarginNanoseconds == 2_000_000)
        configuration.leaseExpiryMargin = .seconds(-3)
        #expect(configuration.leaseExpiryMarginNanoseconds == 0)
        configuration.leaseExpiryMargin = .seconds(100 * 86_400)
        #expect(configuration.leaseExpiryMarginNanoseconds == Int64(UInt32.max) * 1_000_000)
    }

    @Test("a steady strict key keeps no rare state and no extras")
    func strictKeyStaysLean() async throws {
        let cache = KeyCache()
        let gate = QuotaGate(transport: GrantEverything(), cache: cache) { ("sidecar-a", 1) }
        let plan = GatePlan(Self.plan)
        let request = GateRequest(keyID: Self.hexID(1), plan: plan, feature: .apiCall)
        for _ in 0..<300 {
            let verdict: GateVerdict
            if let now = gate.decide(request) { verdict = now } else { verdict = await gate.waitForDecision(request) }
            #expect(verdict.isAdmitted)
        }
        let lean = cache.lock.withLock { () -> Bool? in
            guard let position = cache.state.position(of: CompactKeyID(Self.hexID(1))) else { return nil }
            let row = cache.state.keys[position]
            return row.extras == nil && row.slot?.rare == nil && row.slot?.figuresKnown == true
        }
        #expect(lean == true)
    }

    @Test("the period table hands out one index per period and compacts to the periods still used")
    func periodTable() {
        let table = PeriodTable()
        let days = (0..<10).map { ResetInterval.day.period(containing: Timestamp(seconds: 1_795_474_800 + Int64($0) * 86_400)) }
        let indices = days.map { table.append($0) }
        #expect(indices == (0..<10).map(UInt32.init))
        #expect(table.index(of: days[3]) == 3 && table.ids[3] == days[3].id && table.bounds[3].end == days[3].end)
        let remap = table.compact(keeping: (0..<10).map { $0 % 3 == 0 })
        #expect(table.count == 4)
        #expect(remap[0] == 0 && remap[3] == 1 && remap[6] == 2 && remap[9] == 3 && remap[1] == .max)
        #expect(table.index(of: days[9]) == 3 && table.ids[3] == days[9].id)
        #expect(table.index(of: days[1]) == nil)
    }

    @Test("slots keep their periods through rollovers and compactions of the period table")
    func rolloverCompactsPeriods() async throws {
        let clock = TestClock(Timestamp(seconds: 1_795_474_800))
        let gate = QuotaGate(transport: GrantEverything(), clock: clock) { ("sc-test", 1) }
        let plan = Plan(name: "minutely", features: [.apiCall: .metered(MeteredFeature(limit: 1_000, reset: .minute))]).resolved()
        let requests = (0..<20).map { GateRequest(keyID: Self.hexID($0), plan: plan, feature: .apiCall) }
        for minute in 0..<150 {
            for request in requests {
                let verdict: GateVerdict
                if let quick = gate.decide(request) { verdict = quick } else { verdict = await gate.waitForDecision(request) }
                #expect(verdict.isAdmitted, "minute \(minute)")
            }
            let (count, ids) = gate.lock.withLock {
                (gate.state.periods.count, Set(gate.state.keys.entries.compactMap { $0.value.slot.map { gate.state.periods.ids[Int($0.period)] } }))
            }
            // Every key is in this minute's period, and the table holds few more than that.
            #expect(ids == [ResetInterval.minute.period(containing: clock.now()).id])
            #expect(count <= 64)
            clock.advance(by: .seconds(60))
        }
    }

    @Test("an admission's RateLimit figures carry the names of the request's plan")
    func admissionHeaders() async throws {
        let gate = QuotaGate(transport: GrantEverything()) { ("sc-test", 1) }
        let request = GateRequest(keyID: Self.hexID(3), plan: Self.plan, feature: .apiCall)
        let verdict: GateVerdict
        if let quick = gate.decide(request) { verdict = quick } else { verdict = await gate.waitForDecision(request) }
        guard case .admit(let admission) = verdict else {
            Issue.record("expected an admission")
            return
        }
        let headers = admission.limits.headers(for: request)
        #expect(headers.policyFieldValue == #""api_call";q=1000;w=86400"#)
        #expect(headers.limitFieldValue?.hasPrefix(#""api_call";r=999;t="#) == true)
    }
}

/// Grants every lease request in full at once: the gate's own logic without a collector.
struct GrantEverything: LeaseTransport {
    func request(_ body: Tollgate_V1_Envelope.OneOf_Body, timeout: Duration) async throws -> Tollgate_V1_Envelope {
        guard case .leaseRequest(let request) = body else { throw CancellationError() }
        var grant = Tollgate_V1_LeaseGrant()
        grant.keyID = request.keyID
        grant.feature = request.feature
        grant.periodID = request.periodID
        grant.units = request.unitsWanted
        grant.expiresAtUnixMs = Int64.max / 2_000_000
        grant.remainingUnleased = 1_000 - min(1_000, request.unitsWanted)
        grant.holders = 1
        var envelope = Tollgate_V1_Envelope()
        envelope.body = .leaseGrant(grant)
        return envelope
    }

    func send(_ body: Tollgate_V1_Envelope.OneOf_Body) {}
}
