/// Runs `body` with a fresh `redis-server`, then kills it and removes its directory, even if `body` throws.
///
/// ```swift
/// try withRedisServer { server in
///     let connection = try RedisConnection(configuration: server.configuration)
///     defer { connection.close() }
///     #expect(try connection.send("PING") == .status("PONG"))
/// }
/// ```
public func withRedisServer<T>(
    _ options: RedisServer.Options = .init(),
    _ body: (RedisServer) throws -> T
) throws -> T {
    let server = try RedisServer(options: options)
    defer { server.cleanUp() }
    return try body(server)
}

/// Runs async `body` with a fresh `redis-server`, then kills it and removes its directory, even if `body` throws.
public func withRedisServer<T>(
    _ options: RedisServer.Options = .init(),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisServer) async throws -> T
) async throws -> T {
    let server = try RedisServer(options: options)
    defer { server.cleanUp() }
    return try await body(server)
}
