import TollgateCore
import TollgateRedis

/// Which counter of a key, feature and period a billing meter follows.
public enum MeterKind: String, Sendable, Hashable, CaseIterable {
    /// Successful calls: the counter hash's `s2xx`.
    case successCalls = "calls"
    /// Overage units: the counter's `units` beyond the included limit plus `credit`, computed in
    /// Redis the way the usage API computes `overage_units` (the claim takes the limit).
    case overage

    /// The counter hash field the meter reads.
    public var counterField: String {
        switch self {
        case .successCalls: RedisKeys.Field.status[1]
        case .overage: RedisKeys.Field.units
        }
    }
}

/// One meter's cursor: a key, a feature, what is counted, and the period.
public struct MeterCursorID: Sendable, Hashable, CustomStringConvertible {
    /// The key id (hex SHA-256).
    public var keyID: String
    /// The feature whose counters are billed.
    public var feature: String
    /// Which counter.
    public var kind: MeterKind
    /// The core's period id, e.g. `d20261123`.
    public var periodID: String

    /// A cursor for the given counter.
    public init(keyID: String, feature: String, kind: MeterKind, periodID: String) {
        self.keyID = keyID
        self.feature = feature
        self.kind = kind
        self.periodID = periodID
    }

    /// `<key prefix>/<feature>/<kind>/<period>`, for logs.
    public var description: String { "\(keyID.prefix(12))/\(feature)/\(kind.rawValue)/\(periodID)" }
}

/// A range of units to send as one meter event: `(from, to]` of the counter, under `identifier`.
public struct MeterRange: Sendable, Hashable {
    /// Units Stripe already has (exclusive lower bound).
    public var from: UInt64
    /// The counter's value when the range was cut (inclusive upper bound).
    public var to: UInt64
    /// Deterministic from key, feature, meter, period and range: every resend carries the same one.
    public var identifier: String
    /// The event's timestamp (Unix seconds), fixed when the range was cut so a resend is identical.
    public var timestamp: Int64
    /// How many times the range has been claimed (1 the first time; more means a resend).
    public var claims: Int

    /// The event's value.
    public var value: UInt64 { to - from }
}

/// What `MeterCursorStore.claim` found.
public enum MeterClaim: Sendable, Hashable {
    /// Nothing to send: the counter equals what Stripe has.
    case idle(sent: UInt64, counted: UInt64)
    /// Another owner holds the pending range until `until` (Unix ms).
    case busy(owner: String, until: Int64)
    /// Send this range (new, or pending from before and now ours).
    case send(MeterRange)
}

/// The durable cursor of one Stripe meter per key, feature and period: Redis counters are the
/// truth, the cursor says how much of them Stripe acknowledged, and a pending range is written
/// *before* it is sent.
///
/// Threading: a `Sendable` value; each call blocks on the connection it is given.
///
/// Protocol (each step one Lua call on the key's slot, next to the counters it reads):
/// 1. `claim`: if a range is pending, take it over unless another owner's claim is still live
///    (`busy`); otherwise cut a new range `(sent, counter]` with identifier
///    `tg_` + SHA-1(`key:feature:meter:period:from:to`) and its timestamp, owned by the caller.
/// 2. Send it (the same identifier on every retry and after any restart).
/// 3. `complete`: if the range is still the pending one, `sent = to` and the pending fields go.
///
/// A crash between 1 and 3 leaves the range pending; whoever claims it next sends the same event
/// again, which Stripe de-duplicates by identifier. Two collectors never send the same range at
/// once while the claim lives (`claimTTL`); the owner renews it by claiming again before each attempt.
/// ```swift
/// let cursors = MeterCursorStore()
/// if case .send(let range) = try cursors.claim(id, owner: "collector-1", at: now, on: connection) {
///     // POST the event with range.identifier, then:
///     try cursors.complete(id, identifier: range.identifier, on: connection)
/// }
/// ```
public struct MeterCursorStore: Sendable {
    /// How long a claim lives, and how long a cursor outlives its counter.
    public struct Configuration: Sendable, Hashable {
        /// How long the owner of a pending range keeps it before another may take it over; default 60 s.
        public var claimTTL: Duration = .seconds(60)
        /// How long a cursor outlives the counter it follows; default 1 day.
        public var margin: Duration = .seconds(86_400)

        /// The defaults.
        public init() {}
    }

    /// The configuration.
    public let configuration: Configuration
    private let limits = UsageBatchLimits()

    /// A store with `configuration`.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Claims what is to be sent for `cursor`, as `owner`, at `now`. An overage cursor needs the
    /// feature's `includedLimit` in the key's effective plan (units up to it and the period's
    /// credits are not overage); without one it is idle. A limit lowered mid-period can make the
    /// counted overage jump; a limit raised makes it stall until units pass what was sent.
    public func claim(
        _ cursor: MeterCursorID, owner: String, includedLimit: UInt64? = nil, at now: Timestamp, on connection: RedisConnection
    ) throws(StoreError) -> MeterClaim {
        if cursor.kind == .overage && includedLimit == nil {
            let stored = try self.read(cursor, on: connection)
            if stored.pending == nil { return .idle(sent: stored.sent, counted: stored.sent) }
        }
        try self.check(cursor)
        let claimMs = Int64(self.configuration.claimTTL.components.seconds) * 1_000
            + self.configuration.claimTTL.components.attoseconds / 1_000_000_000_000_000
        // The event is stamped inside its period (Stripe bills by timestamp): now, or the
        // period's last second when the period is over.
        let end = PeriodEnd.of(cursor.periodID).map { $0.seconds - 1 } ?? now.seconds
        let timestamp = min(now.seconds, end)
        let reply = try StoreError.wrapping("claiming a meter range") {
            try connection.evalScript(Self.claimScript, keys: [
                RedisArgument(self.key(cursor)),
                RedisArgument(RedisKeys.usage(keyID: cursor.keyID, feature: cursor.feature, periodID: cursor.periodID)),
            ], args: [
                RedisArgument(cursor.kind.counterField), RedisArgument(owner), RedisArgument(now.milliseconds),
                RedisArgument(now.milliseconds + claimMs), RedisArgument(timestamp),
                RedisArgument("\(cursor.keyID):\(cursor.feature):\(cursor.kind.rawValue):\(cursor.periodID)"),
                RedisArgument(self.configuration.margin.components.seconds * 1_000),
                RedisArgument(cursor.kind == .overage ? String(includedLimit ?? UInt64.max) : ""),
            ])
        }
        return try Self.parseClaim(reply)
    }

    /// Marks the range named `identifier` as acknowledged by Stripe. False when it is not the
    /// pending range any more (another owner completed it): nothing changes.
    @discardableResult
    public func complete(_ cursor: MeterCursorID, identifier: String, on connection: RedisConnection) throws(StoreError) -> Bool {
        try self.check(cursor)
        let reply = try StoreError.wrapping("completing a meter range") {
            try connection.evalScript(Self.completeScript, keys: [RedisArgument(self.key(cursor))], args: [RedisArgument(identifier)])
        }
        return reply.int == 1
    }

    /// Lets go of `owner`'s claim on the pending range without completing it: the range stays
    /// pending and anyone may claim it from `until` (Unix ms; 0 for at once).
    public func release(_ cursor: MeterCursorID, owner: String, until: Int64, on connection: RedisConnection) throws(StoreError) {
        try self.check(cursor)
        _ = try StoreError.wrapping("releasing a meter range") {
            try connection.evalScript(Self.releaseScript, keys: [RedisArgument(self.key(cursor))],
                                      args: [RedisArgument(owner), RedisArgument(until)])
        }
    }

    /// The cursor as stored: units acknowledged, and the pending range if one is out.
    public func read(_ cursor: MeterCursorID, on connection: RedisConnection) throws(StoreError) -> (sent: UInt64, pending: MeterRange?) {
        try self.check(cursor)
        let reply = try StoreError.wrapping("reading a meter cursor") {
            try connection.send("HMGET", RedisArgument(self.key(cursor)), "sent", "from", "to", "id", "ts", "claims")
        }
        let fields = (reply.array ?? []).map(\.string)
        guard fields.count == 6 else { throw StoreError(.corruptRecord, "meter cursor \(cursor): \(reply)") }
        let sent = fields[0].flatMap { UInt64($0) } ?? 0
        guard let from = fields[1].flatMap({ UInt64($0) }), let to = fields[2].flatMap({ UInt64($0) }), let id = fields[3],
              let ts = fields[4].flatMap({ Int64($0) })
        else { return (sent, nil) }
        return (sent, MeterRange(from: from, to: to, identifier: id, timestamp: ts, claims: fields[5].flatMap { Int($0) } ?? 0))
    }

    func key(_ cursor: MeterCursorID) -> String {
        RedisKeys.stripeCursor(keyID: cursor.keyID, feature: cursor.feature, meter: cursor.kind.rawValue, periodID: cursor.periodID)
    }

    private func check(_ cursor: MeterCursorID) throws(StoreError) {
        try UsageBatchRecord.checkName(cursor.keyID, "key_id", limits: self.limits, allowColon: false)
        try UsageBatchRecord.checkName(cursor.feature, "feature", limits: self.limits, allowColon: false)
        try UsageBatchRecord.checkName(cursor.periodID, "period_id", limits: self.limits, allowColon: false)
    }
}
