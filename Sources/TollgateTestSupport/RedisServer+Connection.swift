import TollgateRedis

extension RedisServer {
    /// Runs `body` with a new connection to this server (TCP unless `configure` changes it), closed afterwards.
    public func withConnection<T>(
        configure: (inout RedisConfiguration) -> Void = { _ in },
        _ body: (RedisConnection) throws -> T
    ) throws -> T {
        var configuration = self.configuration
        configure(&configuration)
        let connection = try RedisConnection(configuration: configuration)
        defer { connection.close() }
        return try body(connection)
    }
}
