/// Topic frames for the collector's PUB socket, so a sidecar subscribes to just what it serves.
///
/// ZeroMQ filters by byte prefix, so every topic starts with `u.`: a sidecar subscribes to
/// `u.<key id>` for each key it caches plus `u.*` for fleet-wide changes, or to `u.` for all.
public enum UpdateTopic {
    /// The prefix every update topic shares.
    public static let prefix = "u."
    /// The topic of fleet-wide updates (plan edits that touch many keys).
    public static let fleet = "u.*"

    /// The topic for updates about one key.
    public static func key(_ keyID: String) -> String { prefix + keyID }

    /// The topic an update is published under.
    public static func of(_ update: Tollgate_V1_QuotaUpdate) -> String {
        update.keyID.isEmpty ? fleet : key(update.keyID)
    }
}
