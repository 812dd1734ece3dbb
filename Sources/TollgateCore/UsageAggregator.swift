/// Folds usage events into one `UsageDelta` per (key, feature, period id) until drained into a batch.
///
/// Idempotency: an event whose (key, feature, idempotency key) was seen within `idempotencyWindow`
/// is dropped. Memory is bounded: at most `idempotencyCapacity` keys are remembered (oldest
/// forgotten first) and none longer than the window, measured against the latest event time seen.
/// This only catches client retries that reach the same sidecar; fleet-wide exactly-once accounting
/// rests on the batch sequence numbers the collector checks.
///
/// Threading: a value type; the owner serialises access.
public struct UsageAggregator: Sendable {
    /// The result of recording an event.
    public enum RecordResult: Sendable, Hashable {
        /// Counted.
        case recorded
        /// Dropped: its idempotency key was seen within the window.
        case duplicate
    }

    private struct DeltaKey: Hashable, Sendable {
        var key: String
        var feature: FeatureName
        var periodID: String
    }

    private struct IdempotencyKey: Hashable, Sendable {
        var key: String
        var feature: FeatureName
        var token: String
    }

    /// How long an idempotency key is remembered, in nanoseconds.
    public let idempotencyWindowNanoseconds: Int64
    /// How many idempotency keys are remembered at most.
    public let idempotencyCapacity: Int

    private var deltas: [DeltaKey: UsageDelta] = [:]
    private var seen: [IdempotencyKey: Timestamp] = [:]
    /// Insertion order of `seen`, consumed from `head`, so eviction is O(1) amortised.
    private var order: [(IdempotencyKey, Timestamp)] = []
    private var head = 0
    private var latest = Timestamp.min

    /// Creates an aggregator (defaults: remember up to 65 536 idempotency keys for 10 minutes).
    public init(idempotencyWindow: Duration = .seconds(600), idempotencyCapacity: Int = 65_536) {
        self.idempotencyWindowNanoseconds = Swift.max(0, idempotencyWindow.saturatingNanoseconds)
        self.idempotencyCapacity = Swift.max(0, idempotencyCapacity)
    }

    /// The number of idempotency keys currently remembered (never above `idempotencyCapacity`).
    public var rememberedIdempotencyKeys: Int { seen.count }

    /// Whether there is nothing to drain.
    public var isEmpty: Bool { deltas.isEmpty }

    /// How many deltas (distinct key, feature and period) are waiting to be drained.
    public var count: Int { deltas.count }

    /// Counts `event` in the period of `interval` containing its time, unless it is a duplicate.
    public mutating func record(_ event: UsageEvent, interval: ResetInterval) -> RecordResult {
        record(event, periodID: interval.period(containing: event.at).id)
    }

    /// Counts `event` in the period `periodID` (which the caller resolved, e.g. from a cache of the
    /// current period), unless it is a duplicate.
    public mutating func record(_ event: UsageEvent, periodID: String) -> RecordResult {
        guard admit(event) else { return .duplicate }
        let dk = DeltaKey(key: event.key, feature: event.feature, periodID: periodID)
        deltas[dk, default: UsageDelta(key: event.key, feature: event.feature, periodID: periodID)].add(event)
        return .recorded
    }

    /// Whether `event` counts (it is not a repeat of an idempotency key seen within the window);
    /// remembers its key. For callers that keep one delta per event instead of folding them here.
    public mutating func admit(_ event: UsageEvent) -> Bool {
        latest = Swift.max(latest, event.at)
        evict()
        if let token = event.idempotencyKey, idempotencyCapacity > 0 {
            let id = IdempotencyKey(key: event.key, feature: event.feature, token: token)
            if let at = seen[id], latest.nanoseconds(since: at) <= idempotencyWindowNanoseconds {
                return false
            }
            seen[id] = event.at
            order.append((id, event.at))
            evict()
        }
        return true
    }

    /// Everything recorded since the last drain, sorted by key, feature and period id; the aggregator
    /// keeps its idempotency memory across drains.
    public mutating func drain() -> [UsageDelta] {
        defer { deltas.removeAll(keepingCapacity: true) }
        return deltas.values.sorted { ($0.key, $0.feature.rawValue, $0.periodID) < ($1.key, $1.feature.rawValue, $1.periodID) }
    }

    private mutating func evict() {
        while head < order.count {
            let (id, at) = order[head]
            let tooMany = seen.count > idempotencyCapacity
            let tooOld = latest.nanoseconds(since: at) > idempotencyWindowNanoseconds
            guard tooMany || tooOld else { break }
            // A key re-recorded later has a newer entry further on; only forget it via that one.
            if seen[id] == at { seen[id] = nil }
            head += 1
        }
        if head > 1024, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
