/// How collectors reach Redis. Sidecars never do.
public struct RedisSettings: Hashable, Sendable {
    /// Host name or address, for TCP.
    public var host: String = "127.0.0.1"
    /// TCP port.
    public var port: Int = 6379
    /// A unix socket path; when set it is used instead of host and port.
    public var unixSocket: String?
    /// ACL user name for AUTH (Redis 6+); nil uses the default user.
    public var username: String?
    /// Password for AUTH; from `password_env` in production.
    public var password: String?
    /// Database number for SELECT.
    public var database: Int = 0
    /// Connect timeout, milliseconds.
    public var connectTimeoutMs: Int = 2_000
    /// Per-command timeout, milliseconds.
    public var commandTimeoutMs: Int = 2_000

    /// Defaults: 127.0.0.1:6379, db 0, no password.
    public init() {}
}

extension RedisSettings {
    static func parse(_ node: ConfigNode, environment: ConfigEnvironment) throws(ConfigError) -> RedisSettings {
        let map = try node.mapping()
        var settings = RedisSettings()
        if let value = map.optional("host") { settings.host = try value.nonEmptyString() }
        if let value = map.optional("port") { settings.port = try value.int(in: 1...65_535) }
        if let value = map.optional("unix_socket") { settings.unixSocket = try value.nonEmptyString() }
        settings.username = try map.secret("username", in: environment)
        settings.password = try map.secret("password", in: environment)
        if let value = map.optional("database") { settings.database = try value.int(in: 0...15) }
        if let value = map.optional("connect_timeout_ms") { settings.connectTimeoutMs = try value.int(in: 1...600_000) }
        if let value = map.optional("command_timeout_ms") { settings.commandTimeoutMs = try value.int(in: 1...600_000) }
        try map.finish()
        return settings
    }
}
