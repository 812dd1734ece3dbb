import TollgateRedis
import TollgateStore

/// `UsageReading` over Redis: the same records enforcement and ingest write.
///
/// Threading: `Sendable`; queries run on the `RedisClient`'s own thread, never the cooperative pool.
public struct RedisUsageReader: UsageReading {
    private let client: RedisClient
    private let store: UsageStore
    private let registry = KeyRegistry()

    /// A reader that queries through `client`.
    public init(client: RedisClient, store: UsageStore = UsageStore()) {
        self.client = client
        self.store = store
    }

    public func entry(keyID: String) async throws -> RegistryEntry? {
        let registry = self.registry
        return try await client.withConnection { connection in try registry.lookup(keyID: keyID, on: connection) }
    }

    public func counters(keyID: String, feature: String, periodID: String) async throws -> UsageCounters {
        let store = self.store
        return try await client.withConnection { connection in
            try store.usage(keyID: keyID, feature: feature, periodID: periodID, on: connection)
        }
    }

    public func keys() async throws -> [RegistryKey] {
        let registry = self.registry
        return try await client.withConnection { connection in try registry.listKeys(on: connection) }
    }

    public func planNames() async throws -> Set<String> {
        let registry = self.registry
        return try await client.withConnection { connection in Set(try registry.plans(on: connection).keys) }
    }

    /// True when Redis answers PING.
    public func ping() async -> Bool {
        (try? await client.send("PING"))?.string == "PONG"
    }
}
