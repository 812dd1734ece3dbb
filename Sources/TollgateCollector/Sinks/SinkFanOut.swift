import Foundation
import Logging
import Metrics

/// Feeds every configured `UsageSink` from one bounded queue, on a thread of its own.
///
/// Threading: `offer` is safe from any thread and never blocks: it takes a lock, appends, and
/// signals. When the queue holds `capacity` events the event is dropped, counted
/// (`tollgate_collector_sink_dropped_total{reason="queue_full"}`) and logged (at most once a
/// second), and `offer` returns false. The sink thread takes the whole queue at once and hands
/// each event to every sink in order, then runs the event's `onDelivered` (the ingest loop acks a
/// batch from there, so an acked batch is always in the audit log, even after a SIGKILL).
///
/// ```swift
/// let fanOut = SinkFanOut(sinks: [audit, stripe], capacity: 10_000, logger: logger)
/// try fanOut.start()
/// _ = fanOut.offer(.applied(batch)) { /* delivered */ }
/// await fanOut.stop()    // delivers what is queued, then closes the sinks
/// ```
// @unchecked Sendable: `queue`, `state` and `lastDropLog` are only touched under `condition`'s lock.
public final class SinkFanOut: @unchecked Sendable {
    /// The sinks, in delivery order.
    public let sinks: [any UsageSink]
    /// Events the queue holds at most.
    public let capacity: Int
    private let logger: Logger
    private let condition = NSCondition()
    private var queue: [(SinkEvent, (@Sendable () -> Void)?)] = []
    private var state = State.idle
    private var lastDropLog = ContinuousClock.now - .seconds(2)
    private let finished = ReadySignal()
    private let metrics = SinkMetrics()

    private enum State { case idle, running, stopping, stopped }

    /// A fan-out to `sinks` holding at most `capacity` events; nothing runs before `start()`.
    public init(sinks: [any UsageSink], capacity: Int, logger: Logger) {
        precondition(capacity > 0, "a sink queue needs room for at least one event")
        self.sinks = sinks
        self.capacity = capacity
        self.logger = logger
    }

    /// Starts the sink thread.
    public func start() {
        let start: Bool = self.condition.withLock {
            guard self.state == .idle else { return false }
            self.state = .running
            return true
        }
        guard start else { return }
        let thread = Thread { [self] in
            self.loop()
            for sink in self.sinks { sink.close() }
            self.finished.resolve(.success(()))
        }
        thread.name = "tollgate-collector-sinks"
        thread.start()
    }

    /// Queues `event` for every sink; false (counted, logged) when the queue is full or stopped.
    /// `onDelivered` runs on the sink thread once every sink has had the event.
    @discardableResult
    public func offer(_ event: SinkEvent, onDelivered: (@Sendable () -> Void)? = nil) -> Bool {
        let refused: String? = self.condition.withLock {
            guard self.state == .running else { return "stopped" }
            guard self.queue.count < self.capacity else {
                let now = ContinuousClock.now
                guard now - self.lastDropLog >= .seconds(1) else { return "queue_full_quiet" }
                self.lastDropLog = now
                return "queue_full"
            }
            self.queue.append((event, onDelivered))
            self.condition.signal()
            return nil
        }
        guard let refused else { return true }
        switch refused {
        case "stopped":
            self.metrics.droppedStopped.increment()
        default:
            self.metrics.droppedFull.increment()
            if refused == "queue_full" {
                self.logger.warning("sink queue full: an event was dropped", metadata: ["tollgate.capacity": "\(self.capacity)"])
            }
        }
        return false
    }

    /// Refuses new events, delivers what is queued, closes every sink and waits for the thread.
    public func stop() async {
        let wasRunning: Bool = self.condition.withLock {
            defer { if self.state == .running { self.state = .stopping } }
            self.condition.signal()
            return self.state == .running
        }
        guard wasRunning else { return }
        try? await self.finished.wait()
    }

    private func loop() {
        while true {
            self.condition.lock()
            while self.queue.isEmpty && self.state == .running {
                self.condition.wait()
            }
            if self.queue.isEmpty {
                self.state = .stopped
                self.condition.unlock()
                return
            }
            let items = self.queue
            self.queue.removeAll(keepingCapacity: true)
            self.condition.unlock()
            self.metrics.queueDepth.record(items.count)
            for (event, onDelivered) in items {
                for sink in self.sinks {
                    switch event {
                    case .applied(let batch): sink.applied(batch)
                    case .settled(let settlement): sink.settled(settlement)
                    }
                }
                self.metrics.delivered(event)
                onDelivered?()
            }
            self.metrics.queueDepth.record(0)
        }
    }
}
