import TollgateRedis

extension UsageStore {
    /// Every counter hash in the keyspace (`SCAN` with `MATCH tg:{*}:u:*`, `count` per step), as
    /// `(keyID, feature, periodID)`, handed to `visit` one `SCAN` page at a time.
    ///
    /// For the sinks' recovery scan: it walks the whole keyspace, so run it rarely and off the
    /// ingest thread. On Redis Cluster, run it against every primary.
    public func scanCounters(
        on connection: RedisConnection, count: Int = 1_000, _ visit: ([(keyID: String, feature: String, periodID: String)]) -> Void
    ) throws(StoreError) {
        var cursor = "0"
        repeat {
            let reply = try StoreError.wrapping("scanning counters") {
                try connection.send("SCAN", RedisArgument(cursor), "MATCH", "tg:{*}:u:*", "COUNT", RedisArgument(max(1, count)))
            }
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let names = parts[1].array else {
                throw StoreError(.corruptRecord, "SCAN answered \(reply)")
            }
            visit(names.compactMap { $0.string.flatMap(Self.parseCounterKey) })
            cursor = next
        } while cursor != "0"
    }

    /// `tg:{<key>}:u:<feature>:<period>` split into its parts; nil for anything else.
    static func parseCounterKey(_ name: String) -> (keyID: String, feature: String, periodID: String)? {
        guard name.hasPrefix("tg:{"), let close = name.firstIndex(of: "}") else { return nil }
        let keyID = String(name[name.index(name.startIndex, offsetBy: 4)..<close])
        let rest = name[close...].dropFirst()
        guard rest.hasPrefix(":u:") else { return nil }
        let parts = rest.dropFirst(3).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !keyID.isEmpty, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return (keyID, String(parts[0]), String(parts[1]))
    }
}
