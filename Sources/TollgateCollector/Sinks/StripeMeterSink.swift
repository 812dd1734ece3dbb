import Foundation
import Logging
import Metrics
import ServiceLifecycle
import TollgateConfig
import TollgateCore
import TollgateRedis
import TollgateStore

/// Sends billable usage to Stripe as meter events, each unit exactly once, with Redis as the truth.
///
/// As a `UsageSink` it only takes note: an applied batch marks its (key, feature, period) cursors
/// dirty. As a `Service` it flushes: every `flush_interval_ms` it claims each dirty cursor's
/// delta in Redis (`MeterCursorStore`: the pending range is written before anything is sent),
/// sends it as one event with a deterministic identifier, retries 429/5xx with backoff, and on
/// 2xx advances the cursor. At start, and every `rescan_interval_seconds`, it scans the counters
/// so a delta whose dirty mark was lost (a crash, a full queue, another collector that died) is
/// still found; a pending range is sent again with the same identifier.
///
/// Billable: a feature listed in `meters` bills its successful (2xx) calls under `event_name`,
/// and, when `overage_event_name` is set and the key's plan gives the feature an overage policy,
/// its overage units (`units` beyond the limit plus credits, as the usage API counts them). A key without a Stripe
/// customer is skipped and its cursors stay where they are, so its usage is sent once it has one.
///
/// Threading: `Sendable`. Redis goes through a `RedisClient` (its own thread), HTTP through
/// URLSession; the cooperative pool only awaits.
/// ```swift
/// let stripe = StripeMeterSink(settings: settings, owner: "collector-1", redis: RedisClient(configuration: redis), logger: logger)
/// let fanOut = SinkFanOut(sinks: [stripe], capacity: 10_000, logger: logger)
/// // run `stripe` as a Service beside the collector
/// ```
public final class StripeMeterSink: UsageSink, Service, Sendable {
    /// `stripe`.
    public let name = "stripe"
    let settings: StripeSettings
    /// Who claims pending ranges: the collector's id (a restarted collector takes its own ranges back at once).
    let owner: String
    let redis: RedisClient
    let client: StripeMeterClient
    let cursors: MeterCursorStore
    let registry = KeyRegistry()
    let store = UsageStore()
    let clock: any TollgateClock
    let logger: Logger
    let state = StripeSinkState(maxDirty: 1_000_000)
    let pacer: RequestPacer
    let retry: StripeRetryPolicy
    let customers = CustomerCache()
    let retries = RetryCounters()
    /// How long a range Stripe refused (4xx) waits before it is tried again.
    let rejectedHold: Duration = .seconds(300)

    /// A sink for `settings`, claiming as `owner`, reading and writing cursors through `redis`.
    public init(settings: StripeSettings, owner: String, redis: RedisClient, clock: any TollgateClock = WallClock(), logger: Logger) {
        self.settings = settings
        self.owner = owner
        self.redis = redis
        self.client = StripeMeterClient(baseURL: settings.baseURL, secretKey: settings.secretKey, timeout: .milliseconds(settings.timeoutMs))
        var cursorConfiguration = MeterCursorStore.Configuration()
        cursorConfiguration.claimTTL = .milliseconds(settings.claimTTLMs)
        self.cursors = MeterCursorStore(configuration: cursorConfiguration)
        self.clock = clock
        var logger = logger
        logger[metadataKey: "tollgate.sink"] = "stripe"
        self.logger = logger
        self.pacer = RequestPacer(perSecond: settings.maxRequestsPerSecond)
        self.retry = StripeRetryPolicy(initial: .milliseconds(settings.retryInitialMs), maximum: .milliseconds(settings.retryMaxMs))
    }

    // MARK: UsageSink (the fan-out's thread: take note, never wait)

    public func applied(_ event: AppliedBatch) {
        for aggregate in event.batch.aggregates {
            for cursor in self.cursors(for: aggregate) { self.state.markDirty(cursor) }
        }
    }

    public func settled(_ settlement: SettlementEvent) {}

    public func close() {}

    /// The billable cursors an aggregate moves.
    func cursors(for aggregate: UsageAggregateRecord) -> [MeterCursorID] {
        guard let meter = self.settings.meters[aggregate.feature] else { return [] }
        var result: [MeterCursorID] = []
        if aggregate.counters.statuses.success > 0 {
            result.append(MeterCursorID(keyID: aggregate.keyID, feature: aggregate.feature, kind: .successCalls, periodID: aggregate.periodID))
        }
        if meter.overageEventName != nil, aggregate.counters.units > 0 {
            result.append(MeterCursorID(keyID: aggregate.keyID, feature: aggregate.feature, kind: .overage, periodID: aggregate.periodID))
        }
        return result
    }

    /// The meter event name a cursor is sent under, if its feature is billed.
    func eventName(for cursor: MeterCursorID) -> String? {
        guard let meter = self.settings.meters[cursor.feature] else { return nil }
        switch cursor.kind {
        case .successCalls: return meter.eventName
        case .overage: return meter.overageEventName
        }
    }

    // MARK: Service (the flusher)

    /// Scans, then flushes every interval until cancelled or shut down; what is pending stays in Redis.
    public func run() async throws {
        self.logger.info("stripe sink started", metadata: [
            "tollgate.stripe": "\(self.settings.baseURL)", "tollgate.meters": "\(self.settings.meters.keys.sorted())",
        ])
        await cancelWhenGracefulShutdown { await self.loop() }
        self.logger.info("stripe sink stopped", metadata: ["tollgate.waiting": "\(self.state.waiting)"])
    }

    private func loop() async {
        var lastScan: ContinuousClock.Instant?
        let rescanEvery = Duration.seconds(self.settings.rescanIntervalSeconds)
        while !Task.isCancelled {
            let now = ContinuousClock.now
            if lastScan.map({ now - $0 >= rescanEvery }) ?? true || self.state.takeRescanRequest() {
                if await self.scan() { lastScan = now }
            }
            await self.flushPass()
            try? await Task.sleep(for: .milliseconds(self.settings.flushIntervalMs))
        }
    }

    /// Marks every billable counter in Redis dirty; false when Redis could not be scanned.
    @discardableResult
    func scan() async -> Bool {
        let meters = self.settings.meters
        do {
            let found = try await self.redis.withConnection { [store] connection in
                var found: [MeterCursorID] = []
                try store.scanCounters(on: connection) { page in
                    for (keyID, feature, periodID) in page {
                        guard let meter = meters[feature] else { continue }
                        found.append(MeterCursorID(keyID: keyID, feature: feature, kind: .successCalls, periodID: periodID))
                        if meter.overageEventName != nil {
                            found.append(MeterCursorID(keyID: keyID, feature: feature, kind: .overage, periodID: periodID))
                        }
                    }
                }
                return found
            }
            for cursor in found { self.state.markDirty(cursor) }
            self.logger.debug("stripe sink scanned the counters", metadata: ["tollgate.cursors": "\(found.count)"])
            return true
        } catch {
            Counter(label: SinkMetricName.stripeFailures, dimensions: [("reason", "redis")]).increment()
            self.logger.warning("stripe sink could not scan the counters", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Flushes every due cursor, `concurrency` at a time.
    func flushPass() async {
        let due = self.state.takeDue(now: .now)
        guard !due.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            var remaining = due.makeIterator()
            for _ in 0..<self.settings.concurrency {
                guard let cursor = remaining.next() else { break }
                group.addTask { await self.flush(cursor) }
            }
            for await _ in group {
                guard !Task.isCancelled, let cursor = remaining.next() else { continue }
                group.addTask { await self.flush(cursor) }
            }
        }
    }
}

/// What billing needs to know about a key: its Stripe customer, and per feature under an overage
/// policy the included limit.
struct KeyBilling: Sendable {
    var customer: String?
    var overageLimits: [String: UInt64] = [:]
}

/// `KeyBilling` by key id, read from the registry and kept for a minute.
///
/// Threading: safe from any thread.
// @unchecked Sendable: `entries` is only touched under `lock`.
final class CustomerCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: (billing: KeyBilling, until: ContinuousClock.Instant)] = [:]

    func get(_ keyID: String) -> KeyBilling? {
        self.lock.withLock {
            guard let entry = self.entries[keyID], entry.until > .now else { return nil }
            return entry.billing
        }
    }

    func set(_ keyID: String, _ billing: KeyBilling) {
        self.lock.withLock { self.entries[keyID] = (billing, .now + .seconds(60)) }
    }
}

/// Retry counters by status, made on first use.
// @unchecked Sendable: `counters` is only touched under `lock`.
final class RetryCounters: @unchecked Sendable {
    private let lock = NSLock()
    private var counters: [String: Counter] = [:]

    func increment(_ status: String) {
        self.lock.withLock {
            if let counter = self.counters[status] { return counter }
            let counter = Counter(label: SinkMetricName.stripeRetries, dimensions: [("status", status)])
            self.counters[status] = counter
            return counter
        }.increment()
    }
}
