/// Every Redis key Tollgate writes, in one place.
///
/// Layout (all keys of one API key share the hash tag `{<key id>}`, so every Lua script touches one
/// slot and runs unchanged on Redis Cluster):
///
/// | key | type | holds | expires |
/// | --- | --- | --- | --- |
/// | `tg:{<key>}:u:<feature>:<period>` | hash | usage counters: `calls`, `units`, `s1xx`..`s5xx`, `req_bytes`, `resp_bytes`, `lat_sum_us`, `lat_max_us` (a maximum), `ov_units`, `ov_charge`, `credit` (units credited), `x:<name>` per extra meter | period end + retention |
/// | `tg:{<key>}:f:<period>` | set | the features that have a counter hash in the period | as the counters |
/// | `tg:{<key>}:l:<feature>:<period>` | hash | leases: `h:<sidecar>\|<epoch>` → units the holder has been granted and not yet used or returned, `e:<sidecar>\|<epoch>` → when the collector reclaims them (Unix ms), `n` → last lease id | period end + retention |
/// | `tg:{<key>}:b:<sidecar>:<epoch>:<seq>` | string | idempotency marker: this key's share of that batch is applied | marker TTL (longest retry) |
/// | `tg:{<key>}:key` | hash | registry record: `name`, `plan`, `overrides` (JSON), `revoked` (`0`/`1`), `stripe` | never |
/// | `tg:plans` | hash | plan name → JSON of the core `Plan` | never |
/// | `tg:version` | string | registry update version, `INCR`ed on every change | never |
///
/// Feature and period names never contain `:`, `{` or `}` (validated), so names cannot collide.
/// A sidecar id may contain `:`: the epoch and sequence after it are numbers, so the marker still
/// reads one way only.
public enum RedisKeys {
    /// The global hash of plans, plan name → plan JSON.
    public static let plans = "tg:plans"
    /// The registry update version counter.
    public static let version = "tg:version"

    /// `tg:{<keyID>}:u:<feature>:<periodID>`: the counters of one key, feature and period.
    public static func usage(keyID: String, feature: String, periodID: String) -> String {
        "tg:{\(keyID)}:u:\(feature):\(periodID)"
    }

    /// `tg:{<keyID>}:f:<periodID>`: the set of features the key used in the period.
    public static func features(keyID: String, periodID: String) -> String {
        "tg:{\(keyID)}:f:\(periodID)"
    }

    /// `tg:{<keyID>}:b:<sidecarID>:<epoch>:<sequence>`: the marker of this key's part of one batch.
    public static func batchMarker(keyID: String, sidecarID: String, bootEpoch: UInt64, sequence: UInt64) -> String {
        "tg:{\(keyID)}:b:\(sidecarID):\(bootEpoch):\(sequence)"
    }

    /// `tg:{<keyID>}:l:<feature>:<periodID>`: the leases outstanding for one key, feature and period.
    public static func leases(keyID: String, feature: String, periodID: String) -> String {
        "tg:{\(keyID)}:l:\(feature):\(periodID)"
    }

    /// `tg:{<keyID>}:key`: the key's registry record.
    public static func keyRecord(keyID: String) -> String {
        "tg:{\(keyID)}:key"
    }

    /// Counter hash field names.
    public enum Field {
        /// Calls counted.
        public static let calls = "calls"
        /// Units of the feature's meter.
        public static let units = "units"
        /// Calls per status class, 1xx to 5xx.
        public static let status = ["s1xx", "s2xx", "s3xx", "s4xx", "s5xx"]
        /// Request body bytes.
        public static let requestBytes = "req_bytes"
        /// Response body bytes.
        public static let responseBytes = "resp_bytes"
        /// Latency sum, microseconds.
        public static let latencySum = "lat_sum_us"
        /// Largest latency, microseconds (kept as a maximum, not a sum).
        public static let latencyMax = "lat_max_us"
        /// Overage units.
        public static let overageUnits = "ov_units"
        /// Overage charge, atomic units of the asset.
        public static let overageCharge = "ov_charge"
        /// Units credited this period (paid packs, admin grants); they raise the included quota.
        public static let credit = "credit"
        /// Prefix of extra meters (`x:tokens`).
        public static let extraPrefix = "x:"
    }
}
