import TollgateCore
import TollgateRedis

/// Applies usage batches to Redis exactly once, several at a time, on one connection it keeps busy.
///
/// Threading: not thread-safe. It lives on the thread that owns `connection` (the collector's
/// ingest thread), which uses that connection for nothing else.
///
/// Batches are queued by `submit` and go out in groups: `send()` merges the queued batches (up to
/// `Options`) into one script call per sender and API key, writes the calls to the socket and
/// returns at once, so the caller decodes the next batches while Redis runs these. `receive` takes
/// whatever replies have arrived (poll `fileDescriptor` for them), and `takeCompletions()` hands
/// back each batch once every call that carries it has answered: only then has Redis committed it.
///
/// Exactly once, as `UsageStore.apply` promises: each call sets the markers of all its batches
/// and adds their sums atomically. If some of a call's markers were set already (a retry meeting
/// new batches in one call), the script changes nothing and answers -1; the pipeline then sends
/// one call per batch for that key. A batch whose call failed, or whose reply was lost with the
/// connection, completes with an error and must not be acknowledged: the sender retries it, and the
/// markers make the retry apply exactly the keys that did not commit.
///
/// Deliveries of one batch: a copy submitted while the first is still queued or in flight joins
/// it (same token, one completion for both); a copy of a batch completed lately is applied in calls
/// of its own, so a retry never turns a whole merged group into the -1 path.
///
/// ```swift
/// let pipeline = UsagePipeline(store: store, connection: connection)
/// let token = try pipeline.submit(batch)         // throws .invalidInput: nothing written
/// while pipeline.canSend { pipeline.send() }
/// pipeline.receive(readable: pollSaidReadable)   // or receiveBlocking()
/// for done in pipeline.takeCompletions() { acknowledge(done.token, done.result) }
/// ```
public final class UsagePipeline {
    /// How much is merged and kept in flight.
    public typealias Options = UsagePipelineOptions

    /// A batch whose every call has answered (or failed).
    public struct Completion: Sendable {
        /// What `submit` returned for the batch (and for every copy that joined it).
        public var token: Int
        /// The batch's sender.
        public var sidecarID: String
        /// The sender's boot epoch.
        public var bootEpoch: UInt64
        /// The batch's sequence number.
        public var sequence: UInt64
        /// What applying did; a failure means the batch must not be acknowledged.
        public var result: Result<BatchApplyResult, StoreError>
    }

    struct Batch {
        var record: UsageBatchRecord
        var name: BatchName
        var holder: String
        /// `<sidecar>:<epoch>:<sequence>`, the tail of its markers.
        var markerSuffix: String
        /// Seen lately: its calls carry it alone.
        var alone: Bool
        /// Replies still owed by calls that carry it.
        var owed = 0
        var result = BatchApplyResult(appliedAggregates: 0, duplicateAggregates: 0)
        var failure: StoreError?
    }

    struct BatchName: Hashable {
        var sidecarID: String
        var bootEpoch: UInt64
        var sequence: UInt64
    }

    struct SentCall {
        var call: UsageApplyCall
        var group: Int
        /// Its place in the stream of commands written, to tell whether a `SCRIPT LOAD` followed it.
        var position: Int
        var resentForNoScript = false
    }

    enum Expected {
        case call(Int)
        case scriptLoad
    }

    /// The store whose script, settings and metrics are used.
    public let store: UsageStore
    /// The connection, used for nothing else while the pipeline lives.
    public let connection: RedisConnection
    /// The merge and flight limits.
    public let options: Options

    var batches: [Int: Batch] = [:]
    var byName: [BatchName: Int] = [:]
    /// Names of batches completed lately, oldest first, for spotting retries.
    var recent: Set<BatchName> = []
    var recentOrder: [BatchName] = []
    var recentHead = 0
    var queue: [Int] = []
    var queueHead = 0
    var calls: [Int: SentCall] = [:]
    var expected: [Expected] = []
    var expectedHead = 0
    /// Per group in flight: replies owed, and when it was written.
    var groups: [Int: (owed: Int, sent: ContinuousClock.Instant)] = [:]
    var completions: [Completion] = []
    /// Calls answered -1, rebuilt one per batch once the replies at hand are handled.
    var splits: [(group: Int, keyID: String, tokens: [Int])] = []
    var nextToken = 0
    var nextCall = 0
    var nextGroup = 0
    var commandsWritten = 0
    var lastScriptLoad = -1
    var lastProgress = ContinuousClock.now
    var buffer = RedisCommandBuffer()
    var followUps = RedisCommandBuffer()
    var keyTails = KeyTails()
    var periodEnds: [String: Int64] = [:]

    /// A pipeline on `connection`, which must have no replies pending.
    public init(store: UsageStore, connection: RedisConnection, options: Options = Options()) {
        precondition(connection.pendingReplyCount == 0, "UsagePipeline on a connection with \(connection.pendingReplyCount) replies unread")
        self.store = store
        self.connection = connection
        self.options = options
    }

    /// Batches submitted and not yet written to Redis.
    public var queuedBatches: Int { self.queue.count - self.queueHead }
    /// Aggregates of those batches.
    public private(set) var queuedAggregates = 0
    /// Whether replies are owed (poll `fileDescriptor` for them).
    public var isAwaitingReplies: Bool { self.expectedHead < self.expected.count }
    /// Groups written and not fully answered.
    public var groupsInFlight: Int { self.groups.count }
    /// Whether `send()` would write a group now.
    public var canSend: Bool { self.queuedBatches > 0 && self.groups.count < self.options.maxGroupsInFlight }
    /// The socket replies arrive on, while the connection is up.
    public var fileDescriptor: Int32? { self.connection.fileDescriptor }

    /// Validates `record` and queues it; returns the token its completion will carry.
    ///
    /// Throws `.invalidInput` (nothing queued or written) if it breaks a rule. A copy of a batch
    /// still queued or in flight returns that batch's token and is not applied again.
    public func submit(_ record: UsageBatchRecord) throws(StoreError) -> Int {
        try record.validate(limits: self.store.configuration.limits)
        let name = BatchName(sidecarID: record.sidecarID, bootEpoch: record.bootEpoch, sequence: record.sequence)
        if let token = self.byName[name] { return token }
        let token = self.nextToken
        self.nextToken += 1
        self.batches[token] = Batch(
            record: record, name: name,
            holder: LeaseStore.holder(sidecarID: record.sidecarID, bootEpoch: record.bootEpoch),
            markerSuffix: "\(record.sidecarID):\(record.bootEpoch):\(record.sequence)",
            alone: self.recent.contains(name)
        )
        self.byName[name] = token
        if record.aggregates.isEmpty {
            self.complete(token)  // nothing to write: applied as it is
        } else {
            self.queue.append(token)
            self.queuedAggregates += record.aggregates.count
        }
        return token
    }

    /// Completed batches since the last call, in the order they completed.
    public func takeCompletions() -> [Completion] {
        defer { self.completions.removeAll(keepingCapacity: true) }
        return self.completions
    }

    /// Sends every queued batch and waits for every reply; returns all completions not yet taken.
    public func finish() -> [Completion] {
        while self.queuedBatches > 0 || self.isAwaitingReplies {
            if self.canSend {
                self.send()
            } else {
                self.receiveBlocking()
            }
        }
        return self.takeCompletions()
    }

    // MARK: Sending

    /// Merges the next queued batches into one group, writes its calls and returns without waiting.
    public func send() {
        guard self.canSend else { return }
        var tokens: [Int] = []
        var aggregates = 0
        while self.queueHead < self.queue.count, tokens.count < self.options.maxBatchesPerGroup {
            let token = self.queue[self.queueHead]
            let count = self.batches[token]!.record.aggregates.count
            guard tokens.isEmpty || aggregates + count <= self.options.maxAggregatesPerGroup else { break }
            aggregates += count
            tokens.append(token)
            self.queueHead += 1
        }
        self.queuedAggregates -= aggregates
        if self.queueHead > 1_024, self.queueHead * 2 > self.queue.count {
            self.queue.removeFirst(self.queueHead)
            self.queueHead = 0
        }
        self.write(group: self.merge(tokens))
    }

    /// One call per sender and API key (per batch and key for a batch seen lately), in first-seen order.
    private func merge(_ tokens: [Int]) -> [UsageApplyCall] {
        var merged: [UsageApplyCall] = []
        // Call positions by key id, per sender (or per lone batch): one string hashed per aggregate.
        var bySender: [String: [String: Int]] = [:]
        let limit = self.store.configuration.limits.maxCounterValue
        for token in tokens {
            let (record, holder, isAlone) = (self.batches[token]!.record, self.batches[token]!.holder, self.batches[token]!.alone)
            var index = isAlone ? [:] : bySender[holder, default: [:]]
            if !isAlone { bySender[holder] = nil }  // keep `index` uniquely referenced while it grows
            for aggregate in record.aggregates {
                let position: Int
                if let found = index[aggregate.keyID] {
                    position = found
                } else {
                    position = merged.count
                    index[aggregate.keyID] = position
                    merged.append(UsageApplyCall(keyID: aggregate.keyID, holder: holder))
                }
                merged[position].add(aggregate, of: token, limit: limit, names: &self.keyTails)
            }
            if !isAlone { bySender[holder] = index }
        }
        return merged
    }

    private func write(group calls: [UsageApplyCall]) {
        guard !calls.isEmpty else { return }
        let sha: String
        do {
            sha = try self.scriptSHA()
        } catch {
            for token in Set(calls.flatMap { $0.shares.map(\.batch) }) {
                self.batches[token]!.failure = error
                self.complete(token)
            }
            return
        }
        if !self.isAwaitingReplies { self.lastProgress = .now }
        let group = self.nextGroup
        self.nextGroup += 1
        self.groups[group] = (calls.count, .now)
        self.buffer.removeAll()
        for call in calls {
            self.enqueue(call, group: group, sha: sha, toFollowUps: false)
        }
        do {
            try self.connection.append(self.buffer)
            try self.connection.flush()
        } catch {
            self.failAwaiting(error)
        }
    }

    /// Writes `call` into the group buffer (or the follow-ups) and records the reply it owes;
    /// `reserved`: its batches' `owed` already counts it.
    @discardableResult
    func enqueue(_ call: UsageApplyCall, group: Int, sha: String, toFollowUps: Bool, reserved: Bool = false) -> Int {
        let id = self.nextCall
        self.nextCall += 1
        let markerTTL = max(1, self.store.configuration.markerTTL.components.seconds)
        let suffixes = call.shares.map { self.batches[$0.batch]!.markerSuffix }
        let ttls = call.slots.map { self.counterTTL($0.periodID) }
        if toFollowUps {
            call.encode(into: &self.followUps, sha: sha, markerTTL: markerTTL, markerSuffixes: suffixes, ttls: ttls)
        } else {
            call.encode(into: &self.buffer, sha: sha, markerTTL: markerTTL, markerSuffixes: suffixes, ttls: ttls)
        }
        self.calls[id] = SentCall(call: call, group: group, position: self.commandsWritten)
        self.commandsWritten += 1
        self.expected.append(.call(id))
        if !reserved {
            for share in call.shares {
                self.batches[share.batch]!.owed += 1
            }
        }
        return id
    }

    /// The script's SHA, loading it first if this process never has (nothing may be in flight then).
    private func scriptSHA() throws(StoreError) -> String {
        if let sha = UsageStore.applyScript.sha { return sha }
        while self.isAwaitingReplies { self.receiveBlocking() }
        return try StoreError.wrapping("loading the usage script") {
            try self.connection.loadScript(UsageStore.applyScript)
        }
    }

    /// Counters live until `retention` after their period ends, and never less than `retention`
    /// from now (a late retry of an old period). Validation guarantees the period id parses.
    private func counterTTL(_ periodID: String) -> Int64 {
        let end: Int64
        if let known = self.periodEnds[periodID] {
            end = known
        } else {
            end = (PeriodEnd.of(periodID) ?? self.store.clock.now()).seconds
            if self.periodEnds.count > 1_024 { self.periodEnds.removeAll() }
            self.periodEnds[periodID] = end
        }
        let retention = Int64(self.store.configuration.counterRetention.components.seconds)
        return max(end - self.store.clock.now().seconds + retention, retention, 1)
    }

    func complete(_ token: Int) {
        let batch = self.batches.removeValue(forKey: token)!
        self.byName[batch.name] = nil
        if self.recent.insert(batch.name).inserted {
            self.recentOrder.append(batch.name)
            if self.recent.count > Self.recentCapacity {
                self.recent.remove(self.recentOrder[self.recentHead])
                self.recentHead += 1
                if self.recentHead * 2 > self.recentOrder.count {
                    self.recentOrder.removeFirst(self.recentHead)
                    self.recentHead = 0
                }
            }
        }
        self.completions.append(Completion(
            token: token, sidecarID: batch.record.sidecarID, bootEpoch: batch.record.bootEpoch,
            sequence: batch.record.sequence, result: batch.failure.map { .failure($0) } ?? .success(batch.result)
        ))
    }

    /// How many completed batch names are remembered for spotting retries.
    static let recentCapacity = 4_096
}

// Holds a connection, which is not thread-safe.
@available(*, unavailable)
extension UsagePipeline: Sendable {}

/// How much a `UsagePipeline` merges and keeps in flight.
public struct UsagePipelineOptions: Sendable, Hashable {
    /// Most batches merged into one group; default 32.
    public var maxBatchesPerGroup = 32
    /// A group stops growing past this many aggregates (a single batch may exceed it); default 20,000.
    public var maxAggregatesPerGroup = 20_000
    /// Groups written and not yet fully answered, at most; default 2: Redis runs one while the
    /// next is built.
    public var maxGroupsInFlight = 2

    /// The defaults.
    public init() {}
}
