/// Every Redis key Tollgate writes, in one place.
///
/// Layout (all keys of one API key share the hash tag `{<key id>}`, so every Lua script touches one
/// slot and runs unchanged on Redis Cluster):
///
/// | key | type | holds | expires |
/// | --- | --- | --- | --- |
/// | `tg:{<key>}:u:<feature>:<period>` | hash | usage counters: `calls`, `units`, `s1xx`..`s5xx`, `req_bytes`, `resp_bytes`, `lat_sum_us`, `lat_max_us` (a maximum), `ov_units`, `ov_charge`, `credit` (units granted on top of the period's limit by admin credits and payment packs; the lease allocator counts them as included quota), `pay_n` and `pay_amt` (x402 payments settled and their sum, atomic units; written with the ledger entry), `x:<name>` per extra meter | period end + retention |
/// | `tg:{<key>}:f:<period>` | set | the features that have a counter hash in the period | as the counters |
/// | `tg:{<key>}:l:<feature>:<period>` | hash | leases: `h:<sidecar>\|<epoch>` → units the holder has been granted and not yet used or returned, `e:<sidecar>\|<epoch>` → when the collector reclaims them (Unix ms), `n` → last lease id | period end + retention |
/// | `tg:{<key>}:b:<sidecar>:<epoch>:<seq>` | string | idempotency marker: this key's share of that batch is applied | marker TTL (longest retry) |
/// | `tg:{<key>}:cr:<idempotency key>` | string | idempotency marker of an admin credit: `<feature>:<units>:<period>` | as the credited counters |
/// | `tg:{pay:<payer>}:n:<nonce>` | string | payment claim: `claimed\|<claim>\|<key>` or `settled\|<claim>\|<tx>` | the authorization's `validBefore` + 7 days |
/// | `tg:{<key>}:pid:<id>` | hash | payment-identifier id (x402 extension): `st` (`claimed`/`settled`), `claim`, `fp` (SHA-256 of key, route and the decoded payment); once settled `tx`, `prh` (the `PAYMENT-RESPONSE` sent) and `resp` (the kept response, a `PaidResponse` message; absent when it was over the bound) | `x402.idempotency.ttl_seconds` from the claim, again from the settlement |
/// | `tg:{<key>}:settlements` | stream | ledger: `claim`, `payer`, `amount`, `asset`, `network`, `tx`, `route`, `feature`, `credited`, `status`, `at_ms` | never (trimmed to the newest 100,000) |
/// | `tg:{<key>}:paid:<claim>` | string | this claim's settlement is recorded and credited | as the usage counters |
/// | `tg:{<key>}:stripe:<feature>:<meter>:<period>` | hash | Stripe cursor (`MeterCursorStore`): `sent` (units Stripe acknowledged), and while a delta is out `from`, `to`, `id` (its identifier), `ts` (its event timestamp), `owner`, `until` (Unix ms the owner's claim lasts), `claims` | the counters' expiry + 1 day |
/// | `tg:{<key>}:key` | hash | registry record: `name`, `plan`, `overrides` (JSON), `revoked` (`0`/`1`), `stripe`; once the admin API changed it also `src` (`admin`: config loads leave the record alone) and `ver` (registry version of its last admin change, the compare-and-set guard) | never |
/// | `tg:keys` | set | every key id in the registry (config loads and admin creates add to it) | never |
/// | `tg:plans` | hash | plan name → JSON of the core `Plan` | never |
/// | `tg:plans:admin` | set | names of plans last written through the admin API; config loads leave them alone | never |
/// | `tg:version` | string | registry update version, `INCR`ed on every change | never |
///
/// The global keys (`tg:plans`, `tg:plans:admin`, `tg:keys`, `tg:version`) hash to slots of their own:
/// no script mixes them with a key's keys, so a registry change is one script on the key's slot
/// followed by a separate `INCR tg:version`.
///
/// Counter hashes and feature sets get their expiry when the usage script creates them or a field
/// in them (both the same), not on every write: the expiry is an absolute time (period end +
/// retention), so later writes would only set it again.
///
/// Feature and period names never contain `:`, `{` or `}` (validated), so names cannot collide.
/// A sidecar id may contain `:`: the epoch and sequence after it are numbers, so the marker still
/// reads one way only.
public enum RedisKeys {
    /// The global hash of plans, plan name → plan JSON.
    public static let plans = "tg:plans"
    /// The registry update version counter.
    public static let version = "tg:version"
    /// The set of every key id in the registry.
    public static let keys = "tg:keys"
    /// The set of plan names the admin API wrote; config loads do not overwrite them.
    public static let adminPlans = "tg:plans:admin"

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

    /// `tg:{<keyID>}:cr:<idempotencyKey>`: the marker of one idempotent credit.
    public static func creditMarker(keyID: String, idempotencyKey: String) -> String {
        "tg:{\(keyID)}:cr:\(idempotencyKey)"
    }

    /// `tg:{<keyID>}:l:<feature>:<periodID>`: the leases outstanding for one key, feature and period.
    public static func leases(keyID: String, feature: String, periodID: String) -> String {
        "tg:{\(keyID)}:l:\(feature):\(periodID)"
    }

    /// `tg:{pay:<payer>}:n:<nonce>`: the claim on one EIP-3009 authorization, fleet-wide (all of a
    /// payer's claims share a slot, whatever key they pay for).
    public static func paymentClaim(payer: String, nonce: String) -> String {
        "tg:{pay:\(payer)}:n:\(nonce)"
    }

    /// `tg:{<keyID>}:pid:<id>`: one payment-identifier id of a key, with the response it got (ids
    /// are scoped by key, as the extension's specification advises, and share the key's slot).
    public static func paymentIdentifier(keyID: String, id: String) -> String {
        "tg:{\(keyID)}:pid:\(id)"
    }

    /// `tg:{<keyID>}:settlements`: the key's settlement ledger (a stream, newest last).
    public static func settlements(keyID: String) -> String {
        "tg:{\(keyID)}:settlements"
    }

    /// `tg:{<keyID>}:paid:<claim>`: marks a claim's settlement as recorded for the key (once).
    public static func settlementMarker(keyID: String, claimID: String) -> String {
        "tg:{\(keyID)}:paid:\(claimID)"
    }

    /// `tg:{<keyID>}:stripe:<feature>:<meter>:<periodID>`: how much of one counter Stripe has been sent.
    public static func stripeCursor(keyID: String, feature: String, meter: String, periodID: String) -> String {
        "tg:{\(keyID)}:stripe:\(feature):\(meter):\(periodID)"
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
        /// x402 payments settled (written by `PaymentStore.record`, never by usage batches).
        public static let paymentCount = "pay_n"
        /// Their sum, atomic units of the asset.
        public static let paymentAmount = "pay_amt"
        /// Prefix of extra meters (`x:tokens`).
        public static let extraPrefix = "x:"
    }
}
