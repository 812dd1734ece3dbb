import TollgateCore
import TollgateStore

/// The body of `GET /v1/dashboard/state`, which the dashboard page polls.
///
/// Money is a string of integer atomic units (`"1500"`), so JavaScript can read it exactly
/// (a JSON number above 2^53 would not survive `JSON.parse`); the page formats it with
/// `asset.decimals` by string arithmetic. Counts are numbers.
public struct DashboardState: Codable, Sendable, Equatable {
    /// The asset money is counted in.
    public struct Asset: Codable, Sendable, Equatable {
        /// A display name (e.g. `USDC`), when x402 is configured.
        public var name: String?
        /// Decimals of the atomic unit (USDC: 6).
        public var decimals: Int

        /// An asset named `name` (nil: unnamed) with `decimals` decimals.
        public init(name: String?, decimals: Int) {
            self.name = name
            self.decimals = decimals
        }
    }

    /// One sidecar this collector has heard from.
    public struct Sidecar: Codable, Sendable, Equatable {
        /// The sidecar's id.
        public var id: String
        /// Its current boot epoch.
        public var bootEpoch: UInt64
        /// Heard from within the fleet table's stale limit.
        public var connected: Bool
        /// When it was last heard from (RFC 3339).
        public var lastSeen: String
        /// Time since it was last heard from, milliseconds.
        public var lagMs: Int64
        /// Batches it sent that are not acknowledged yet.
        public var unackedBatches: UInt64
        /// Records in its spool on disk.
        public var spoolRecords: UInt64
        /// Bytes in its spool on disk.
        public var spoolBytes: UInt64
        /// The software version it announced.
        public var version: String?
    }

    /// One settlement from a key's ledger.
    public struct Settlement: Codable, Sendable, Equatable {
        /// The key that paid.
        public var keyId: String
        /// Its name, when the key was read.
        public var keyName: String?
        /// When it was recorded (RFC 3339).
        public var at: String
        /// When it was recorded (Unix ms).
        public var atMs: Int64
        /// Atomic units, as a string.
        public var amount: String
        /// The network (CAIP-2).
        public var network: String
        /// What it bought: `call`, `units:<n>`, `refill:<tokens>`.
        public var grant: String
        /// The feature credited.
        public var feature: String
        /// Units added to the period's quota.
        public var creditedUnits: UInt64
        /// The transaction the facilitator reported.
        public var transaction: String
        /// The payer's address.
        public var payer: String
        /// The route paid for.
        public var route: String
    }

    /// The collector's id (`collector.id`).
    public var collector: String
    /// When the state was read (RFC 3339).
    public var asOf: String
    /// The asset money is counted in.
    public var asset: Asset
    /// This collector's ingest rate (every collector counts only what it applied).
    public var ingest: IngestRateRing.Rate
    /// The sidecars this collector has heard from, by id (at most `Limits.maxSidecars`).
    public var sidecars: [Sidecar]
    /// Sidecars in the fleet table.
    public var sidecarsTotal: Int
    /// The keys shown, most used first (at most `Limits.maxKeys`).
    public var keys: [DashboardKeySummary]
    /// Keys in the registry.
    public var keysTotal: Int
    /// Keys read (at most `Limits.maxKeysScanned`).
    public var keysScanned: Int
    /// Newest first, across the scanned keys (at most `Limits.maxSettlements`).
    public var settlements: [Settlement]
}

extension DashboardState {
    /// How much one state may read and show.
    public struct Limits: Sendable, Hashable {
        /// Keys shown, by percent used; default 200.
        public var maxKeys = 200
        /// Keys read per state; beyond this the state says how many it left out. Default 10,000.
        public var maxKeysScanned = 10_000
        /// Settlements shown; default 50.
        public var maxSettlements = 50
        /// Sidecars shown; default 500.
        public var maxSidecars = 500
        /// Keys per Redis round trip (so other HTTP requests get the connection in between); default 1,000.
        public var chunk = 1_000

        /// The defaults.
        public init() {}
    }

    /// Sidecars from `fleet` at `now`, by id.
    static func sidecars(_ fleet: FleetTable, at now: Timestamp, limit: Int) -> ([Sidecar], Int) {
        let all = fleet.snapshot()
        let cutoff = now - fleet.staleAfter
        let shown = all.prefix(max(0, limit)).map { status in
            Sidecar(
                id: status.sidecarID, bootEpoch: status.bootEpoch, connected: status.lastSeen >= cutoff,
                lastSeen: status.lastSeen.description,
                lagMs: max(0, (now.nanosecondsSinceEpoch - status.lastSeen.nanosecondsSinceEpoch) / Timestamp.nanosecondsPerMillisecond),
                unackedBatches: status.unackedBatches, spoolRecords: status.spoolRecords, spoolBytes: status.spoolBytes,
                version: status.softwareVersion
            )
        }
        return (shown, all.count)
    }
}

/// One key on the dashboard: its metered features' usage against what is included.
///
/// Deliberately small and built only from a `UsageReport`, so it can give way to the usage
/// overview type of `GET /v1/usage?over=` without touching the rest of the state.
public struct DashboardKeySummary: Codable, Sendable, Equatable {
    /// One metered feature in the current period.
    public struct Feature: Codable, Sendable, Equatable {
        /// The feature's name.
        public var feature: String
        /// Its unit, e.g. `request`.
        public var unit: String?
        /// The current period's id.
        public var period: String?
        /// When the period ends (RFC 3339, exclusive).
        public var periodEnd: String?
        /// Its over-quota policy: `block`, `payment_required`, `overage`.
        public var policy: String?
        /// Units used this period.
        public var used: UInt64
        /// The plan's limit (with the key's override).
        public var limit: UInt64
        /// Units credited this period (top-ups).
        public var credits: UInt64
        /// `limit + credits`, what the bar is measured against.
        public var included: UInt64
        /// `used / included` in percent, one decimal; 100 when nothing is included but something was used.
        public var percent: Double
        /// Units served beyond what is included.
        public var overageUnits: UInt64
        /// Atomic units, as a string.
        public var overageCharge: String
    }

    /// The key id (hex SHA-256 of the API key).
    public var id: String
    /// The key's name.
    public var name: String
    /// Its plan.
    public var plan: String
    /// Whether it was revoked.
    public var revoked: Bool
    /// The highest `percent` of its features (keys are ranked by it).
    public var maxPercent: Double
    /// Its metered features.
    public var features: [Feature]

    /// The summary of `report`'s metered features.
    public init(_ report: UsageReport) {
        self.id = report.key.id
        self.name = report.key.name
        self.plan = report.key.plan
        self.revoked = report.key.revoked
        self.features = report.features.filter { $0.kind == "metered" }.map { feature in
            let used = feature.used ?? 0
            let included = feature.included ?? feature.limit ?? 0
            return Feature(
                feature: feature.feature, unit: feature.unit, period: feature.period?.id, periodEnd: feature.period?.end,
                policy: feature.policy, used: used, limit: feature.limit ?? 0, credits: feature.credits ?? 0,
                included: included, percent: Self.percent(used: used, of: included),
                overageUnits: feature.overageUnits ?? 0, overageCharge: String(feature.overageCharge ?? 0)
            )
        }
        self.maxPercent = self.features.map(\.percent).max() ?? 0
    }

    /// `used / included` in percent, rounded to a tenth (a display ratio, not money).
    static func percent(used: UInt64, of included: UInt64) -> Double {
        guard included > 0 else { return used > 0 ? 100 : 0 }
        return (Double(used) / Double(included) * 1_000).rounded() / 10
    }
}
