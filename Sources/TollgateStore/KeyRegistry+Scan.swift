import TollgateRedis

extension KeyRegistry {
    /// At most `limit` key ids from `tg:keys`, sorted, and how many the set holds.
    ///
    /// The ids are read with `SSCAN`, so the work is bounded by `limit` however many keys there
    /// are; when the set holds more, which ones come back is Redis's hash order, not a ranking.
    public func keyIDs(limit: Int, on connection: RedisConnection) throws(StoreError) -> (ids: [String], total: Int) {
        try StoreError.wrapping("scanning keys") {
            let total = Int(try connection.send("SCARD", RedisArgument(RedisKeys.keys)).expectInteger())
            var ids = Set<String>()
            var cursor = "0"
            repeat {
                let reply = try connection.send(
                    "SSCAN", RedisArgument(RedisKeys.keys), RedisArgument(cursor), "COUNT", RedisArgument(min(max(limit, 10), 1_000))
                )
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string else {
                    throw StoreError(.corruptRecord, "SSCAN of \(RedisKeys.keys) answered \(reply)")
                }
                cursor = next
                for member in parts[1].array ?? [] {
                    guard ids.count < limit, let id = member.string else { break }
                    ids.insert(id)
                }
            } while cursor != "0" && ids.count < limit
            return (ids.sorted(), total)
        }
    }

    /// The stored keys among `ids` (those without a record are left out), in one pipeline, in the order given.
    public func storedKeys(ids: [String], on connection: RedisConnection) throws(StoreError) -> [RegistryKey] {
        guard !ids.isEmpty else { return [] }
        return try StoreError.wrapping("reading keys") {
            let replies = try connection.pipeline(ids.map { ["HGETALL", RedisArgument(RedisKeys.keyRecord(keyID: $0))] })
            var keys: [RegistryKey] = []
            for (id, reply) in zip(ids, replies) {
                let fields = Self.fields(try reply.expectNotError(command: "HGETALL"))
                guard !fields.isEmpty else { continue }
                keys.append(try Self.storedKey(keyID: id, fields: fields))
            }
            return keys
        }
    }
}
