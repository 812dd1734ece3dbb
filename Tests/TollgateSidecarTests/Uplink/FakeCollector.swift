import Foundation
import TollgateSidecar
import TollgateWire
import TollgateZeroMQ

/// What a collector counted for one (key, feature, period).
struct Tally: Hashable, Sendable {
    var calls: UInt64 = 0
    var units: UInt64 = 0
    var success: UInt64 = 0
    var serverError: UInt64 = 0
    var requestBytes: UInt64 = 0
    var extra: [String: UInt64] = [:]
}

/// The test's stand-in for Redis: applies each (sidecar, epoch, sequence) once, as the real collector does.
// @unchecked Sendable: every stored value is guarded by `lock`.
final class FakeLedger: @unchecked Sendable {
    struct Key: Hashable { var sidecar: String; var id: BatchID }

    private let lock = NSLock()
    private var batches: [Key: [Tollgate_V1_UsageAggregate]] = [:]
    private var duplicateCount = 0
    private var mismatchCount = 0

    /// Applies `batch` unless its id was applied before; true when it was new.
    func apply(_ batch: Tollgate_V1_UsageBatch) -> Bool {
        lock.withLock {
            let key = Key(sidecar: batch.sidecarID, id: BatchID(epoch: batch.bootEpoch, sequence: batch.sequence))
            if let earlier = batches[key] {
                duplicateCount += 1
                if earlier != batch.aggregates { mismatchCount += 1 }
                return false
            }
            batches[key] = batch.aggregates
            return true
        }
    }

    /// Re-deliveries of an applied batch.
    var duplicates: Int { lock.withLock { duplicateCount } }
    /// Re-deliveries whose content differed from the first: one id, two batches. Must stay 0.
    var mismatches: Int { lock.withLock { mismatchCount } }
    /// The ids applied.
    var ids: Set<BatchID> { lock.withLock { Set(batches.keys.map(\.id)) } }
    /// Aggregates applied, summed over batches.
    var aggregateCount: Int { lock.withLock { batches.values.reduce(0) { $0 + $1.count } } }

    /// Totals per "key/feature/period".
    var totals: [String: Tally] {
        lock.withLock {
            var totals: [String: Tally] = [:]
            for aggregate in batches.values.joined() {
                var tally = totals["\(aggregate.keyID)/\(aggregate.feature)/\(aggregate.periodID)", default: Tally()]
                tally.calls += aggregate.calls
                tally.units += aggregate.units
                tally.success += aggregate.status.success
                tally.serverError += aggregate.status.serverError
                tally.requestBytes += aggregate.requestBytes
                tally.extra.merge(aggregate.extraUnits, uniquingKeysWith: +)
                totals["\(aggregate.keyID)/\(aggregate.feature)/\(aggregate.periodID)"] = tally
            }
            return totals
        }
    }
}

/// A ROUTER on its own thread that decodes batches, applies them to a ledger and acks them.
final class FakeCollector: Sendable {
    /// How this collector misbehaves.
    struct Behaviour: Sendable {
        /// Apply but do not ack the first N batches.
        var dropFirstAcks = 0
        /// Answer every batch REJECTED (applying nothing).
        var reject = false
    }

    // @unchecked Sendable: guarded by `lock`.
    final class Counters: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [String: Int] = [:]
        subscript(_ name: String) -> Int {
            get { lock.withLock { values[name, default: 0] } }
            set { lock.withLock { values[name] = newValue } }
        }
        func bump(_ name: String) -> Int { lock.withLock { values[name, default: 0] += 1; return values[name]! } }
    }

    let endpoint: String
    /// "bound", "batches", "acks", "hellos", "heartbeats", "malformed", "other".
    let counters: Counters
    private let thread: ZMQSocketThread

    /// Starts a collector bound to `endpoint` and waits until it is bound.
    static func start(endpoint: String, ledger: FakeLedger, behaviour: Behaviour = Behaviour()) async throws -> FakeCollector {
        let counters = Counters()
        let thread = ZMQSocketThread.start(name: "fake-collector") { thread in
            try serve(endpoint: endpoint, ledger: ledger, behaviour: behaviour, counters: counters, thread: thread)
        }
        let collector = FakeCollector(endpoint: endpoint, thread: thread, counters: counters)
        guard try await eventually(within: 5, { counters["bound"] == 1 || thread.isFinished }), !thread.isFinished else {
            try await thread.join()
            throw UplinkError(.io, "fake collector did not bind \(endpoint)")
        }
        return collector
    }

    private init(endpoint: String, thread: ZMQSocketThread, counters: Counters) {
        self.endpoint = endpoint
        self.thread = thread
        self.counters = counters
    }

    /// Stops the thread and closes the socket.
    func stop() async throws {
        thread.requestStop()
        try await thread.join()
    }

    private static func serve(
        endpoint: String, ledger: FakeLedger, behaviour: Behaviour, counters: Counters, thread: ZMQSocketThread
    ) throws {
        let codec = WireCodec()
        let context = try ZMQContext()
        defer { context.close() }
        let router = try context.makeSocket(.router)
        defer { router.close() }
        try router.setOption(.linger, to: 0)
        try router.bind(endpoint)
        counters["bound"] = 1
        while !thread.isStopRequested {
            guard try router.poll(.readable, timeoutMilliseconds: 10).contains(.readable) else { continue }
            while let message = try router.tryReceiveMessage() {
                guard message.count == 2, let envelope = try? codec.decode(message[1]) else {
                    _ = counters.bump("malformed")
                    continue
                }
                switch envelope.body {
                case .usageBatch(let batch):
                    _ = counters.bump("batches")
                    var ack = Tollgate_V1_BatchAck()
                    ack.sidecarID = batch.sidecarID
                    ack.bootEpoch = batch.bootEpoch
                    ack.sequence = batch.sequence
                    if behaviour.reject {
                        ack.status = .rejected
                        ack.error = "test collector rejects everything"
                    } else {
                        ack.status = ledger.apply(batch) ? .applied : .duplicate
                    }
                    if counters.bump("acks") <= behaviour.dropFirstAcks { continue }
                    try router.send([message[0], codec.encode(.batchAck(ack), correlationID: envelope.correlationID)])
                case .hello:
                    _ = counters.bump("hellos")
                    var ack = Tollgate_V1_HelloAck()
                    ack.collectorID = "fake"
                    try router.send([message[0], codec.encode(.helloAck(ack), correlationID: envelope.correlationID)])
                case .heartbeat:
                    _ = counters.bump("heartbeats")
                default:
                    _ = counters.bump("other")
                }
            }
        }
    }
}
