import TollgateCore
import TollgateRedis
import TollgateStore

/// Reads a `DashboardState` from the registry, the usage counters and settlement ledgers in Redis,
/// the fleet table and the ingest rate.
///
/// Each key's usage is a `UsageReport` (the same code as `GET /v1/usage/{key}`) over counters read
/// in pipelines, so one state costs a handful of round trips per 1,000 keys rather than one per
/// key and feature. The work is bounded by `limits`.
///
/// Threading: `Sendable`; Redis work runs on the `RedisClient`'s thread, a chunk of keys at a time.
public struct DashboardSource: Sendable {
    /// The collector's id, shown in the page's title.
    public var collectorID: String
    /// The asset money is counted in.
    public var asset: DashboardState.Asset
    /// How much one state reads and shows.
    public var limits = DashboardState.Limits()
    let client: RedisClient
    let fleet: FleetTable
    let ingestRate: IngestRate?
    let clock: any TollgateClock
    let registry = KeyRegistry()
    let store = UsageStore()
    let payments = PaymentStore()

    /// A source reading Redis through `client`, sidecars from `fleet` and the rate from `ingestRate`.
    public init(
        collectorID: String, client: RedisClient, fleet: FleetTable, ingestRate: IngestRate?,
        asset: DashboardState.Asset = .init(name: nil, decimals: 6), clock: any TollgateClock = WallClock()
    ) {
        self.collectorID = collectorID
        self.client = client
        self.fleet = fleet
        self.ingestRate = ingestRate
        self.asset = asset
        self.clock = clock
    }

    /// The state now. Throws a `StoreError` when Redis fails or a record is corrupt.
    public func make() async throws -> DashboardState {
        let now = self.clock.now()
        let (registry, limits) = (self.registry, self.limits)
        let (stored, plans, total) = try await self.client.withConnection { connection in
            let (ids, total) = try registry.keyIDs(limit: limits.maxKeysScanned, on: connection)
            return (try registry.storedKeys(ids: ids, on: connection), try registry.plans(on: connection), total)
        }
        var keys: [DashboardKeySummary] = []
        for start in stride(from: 0, to: stored.count, by: max(1, limits.chunk)) {
            let chunk = Array(stored[start..<min(stored.count, start + max(1, limits.chunk))])
            keys += try await self.summaries(chunk, plans: plans, at: now)
        }
        keys.sort { ($0.maxPercent, $1.name, $1.id) > ($1.maxPercent, $0.name, $0.id) }
        let names = Dictionary(stored.map { ($0.key.id, $0.key.name) }, uniquingKeysWith: { first, _ in first })
        let (sidecars, sidecarsTotal) = DashboardState.sidecars(self.fleet, at: now, limit: limits.maxSidecars)
        return DashboardState(
            collector: self.collectorID, asOf: now.description, asset: self.asset,
            ingest: self.ingestRate?.rate() ?? .zero,
            sidecars: sidecars, sidecarsTotal: sidecarsTotal,
            keys: Array(keys.prefix(max(0, limits.maxKeys))), keysTotal: total, keysScanned: stored.count,
            settlements: try await self.settlements(keyIDs: stored.map(\.key.id), names: names)
        )
    }

    /// Usage summaries of `chunk` in the periods containing `now`: one pipeline of counter reads.
    /// A key whose plan is not stored is left out (the usage API reports it as a corrupt record).
    func summaries(_ chunk: [RegistryKey], plans: [String: Plan], at now: Timestamp) async throws -> [DashboardKeySummary] {
        var entries: [RegistryEntry] = []
        var queries: [UsageStore.CounterQuery] = []
        for stored in chunk {
            guard let plan = plans[stored.key.plan] else { continue }
            let effective = plan.resolved(with: stored.key.overrides)
            entries.append(RegistryEntry(key: stored.key, revoked: stored.revoked, effectivePlan: effective, effectivePlanJSON: [], version: 0))
            for (name, feature) in effective.features {
                guard case .metered(let metered) = feature else { continue }
                queries.append(.init(keyID: stored.key.id, feature: name.rawValue, periodID: metered.period(containing: now).id))
            }
        }
        let store = self.store
        let counters = try await self.client.withConnection { [queries] connection in try store.usage(queries, on: connection) }
        let reader = PrefetchedUsage(counters: Dictionary(zip(queries, counters), uniquingKeysWith: { first, _ in first }))
        var summaries: [DashboardKeySummary] = []
        for entry in entries {
            summaries.append(DashboardKeySummary(try await UsageReport.make(entry: entry, at: now, periodID: nil, reader: reader)))
        }
        return summaries
    }

    /// The newest settlements across `keyIDs`, newest first.
    ///
    /// Two steps, both bounded: each ledger's newest entry id (a stream id starts with its time in
    /// ms), then the full newest entries of only the `maxSettlements` ledgers that wrote last,
    /// because every one of the newest `maxSettlements` entries overall is in one of those.
    func settlements(keyIDs: [String], names: [String: String]) async throws -> [DashboardState.Settlement] {
        let limit = max(0, self.limits.maxSettlements)
        guard limit > 0, !keyIDs.isEmpty else { return [] }
        var newest: [(keyID: String, ms: Int64, seq: Int64)] = []
        for start in stride(from: 0, to: keyIDs.count, by: max(1, self.limits.chunk)) {
            let chunk = Array(keyIDs[start..<min(keyIDs.count, start + max(1, self.limits.chunk))])
            // A RedisError from here is answered 503 like a StoreError (`Dashboard`).
            let replies = try await self.client.withConnection { connection in
                try connection.pipeline(chunk.map { ["XREVRANGE", RedisArgument(RedisKeys.settlements(keyID: $0)), "+", "-", "COUNT", "1"] })
            }
            for (keyID, reply) in zip(chunk, replies) {
                guard let id = reply.array?.first?.array?.first?.string, let (ms, seq) = Self.streamID(id) else { continue }
                newest.append((keyID, ms, seq))
            }
        }
        newest.sort { ($0.ms, $0.seq) > ($1.ms, $1.seq) }
        let ledgers = newest.prefix(limit).map(\.keyID)
        let payments = self.payments
        let records = try await self.client.withConnection { connection in
            try ledgers.flatMap { keyID throws(StoreError) in try payments.settlements(keyID: keyID, limit: limit, on: connection) }
        }
        return records.sorted { ($0.atMilliseconds, $0.keyID) > ($1.atMilliseconds, $1.keyID) }.prefix(limit).map { record in
            DashboardState.Settlement(
                keyId: record.keyID, keyName: names[record.keyID],
                at: Timestamp(nanosecondsSinceEpoch: record.atMilliseconds &* Timestamp.nanosecondsPerMillisecond).description,
                atMs: record.atMilliseconds, amount: String(record.amountAtomic), network: record.network, grant: record.grant,
                feature: record.feature, creditedUnits: record.creditedUnits, transaction: record.transaction,
                payer: record.payer, route: record.route
            )
        }
    }

    /// `<ms>-<seq>` of a stream entry id, or nil.
    static func streamID(_ text: String) -> (Int64, Int64)? {
        let parts = text.split(separator: "-")
        guard parts.count == 2, let ms = Int64(parts[0]), let seq = Int64(parts[1]) else { return nil }
        return (ms, seq)
    }
}

/// Counters already read in a pipeline, so `UsageReport.make` runs unchanged.
struct PrefetchedUsage: UsageCounterReading {
    let counters: [UsageStore.CounterQuery: UsageCounters]

    func counters(keyID: String, feature: String, periodID: String) async throws -> UsageCounters {
        guard let counters = self.counters[.init(keyID: keyID, feature: feature, periodID: periodID)] else {
            // Would be a bug here (a period computed differently), never bad input: refuse rather than show zero.
            throw StoreError(.invalidInput, "dashboard: counters of \(keyID.prefix(12)) \(feature) \(periodID) were not read")
        }
        return counters
    }
}
