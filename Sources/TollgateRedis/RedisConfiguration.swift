/// How to reach and set up a Redis connection; every field has a default.
///
/// ```swift
/// var configuration = RedisConfiguration(host: "127.0.0.1", port: 6379)
/// configuration.password = "secret"
/// configuration.database = 2
/// let connection = try RedisConnection(configuration: configuration)
/// ```
public struct RedisConfiguration: Sendable, Hashable {
    /// Where the server listens.
    public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
        /// A TCP host (name or address) and port.
        case tcp(host: String, port: Int)
        /// A unix domain socket path.
        case unixSocket(path: String)

        /// `host:port` or the socket path, for error context.
        public var description: String {
            switch self {
            case .tcp(let host, let port): "\(host):\(port)"
            case .unixSocket(let path): "unix:\(path)"
            }
        }
    }

    /// Where the server listens; default `127.0.0.1:6379`.
    public var endpoint: Endpoint
    /// Limit for establishing the connection; default 2 s.
    public var connectTimeout: Duration
    /// Limit for each socket read or write of a command; default 5 s. Past it the connection is broken.
    public var commandTimeout: Duration
    /// ACL user for `AUTH user password`; `nil` sends `AUTH password` (the `default` user).
    public var username: String?
    /// Password for `AUTH`; `nil` sends no `AUTH`.
    public var password: String?
    /// Database selected with `SELECT` on every (re)connect; default 0 (no `SELECT` sent).
    public var database: Int
    /// How many connect attempts a reconnect makes before giving up; default 3.
    public var reconnectAttempts: Int
    /// Pause before the second reconnect attempt, doubled for each further one; default 100 ms.
    public var reconnectBackoff: Duration
    /// Longest pause between reconnect attempts; default 2 s.
    public var maxReconnectBackoff: Duration

    /// A configuration for `endpoint` with defaults for everything else.
    public init(
        endpoint: Endpoint = .tcp(host: "127.0.0.1", port: 6379),
        connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(5),
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        reconnectAttempts: Int = 3,
        reconnectBackoff: Duration = .milliseconds(100),
        maxReconnectBackoff: Duration = .seconds(2)
    ) {
        self.endpoint = endpoint
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.username = username
        self.password = password
        self.database = database
        self.reconnectAttempts = reconnectAttempts
        self.reconnectBackoff = reconnectBackoff
        self.maxReconnectBackoff = maxReconnectBackoff
    }

    /// A TCP configuration with defaults for everything else.
    public init(host: String, port: Int) {
        self.init(endpoint: .tcp(host: host, port: port))
    }

    /// A unix socket configuration with defaults for everything else.
    public init(unixSocketPath: String) {
        self.init(endpoint: .unixSocket(path: unixSocketPath))
    }
}
