/// The collector's own settings.
public struct CollectorSettings: Hashable, Sendable {
    /// A name for this collector in logs, metrics and HelloAck; defaults to `collector`.
    public var id: String = "collector"
    /// ROUTER endpoint to bind (batches, lease and payment requests).
    public var routerBind: String = "tcp://127.0.0.1:7401"
    /// PUB endpoint to bind (quota updates).
    public var publishBind: String = "tcp://127.0.0.1:7402"
    /// HTTP listen address (`host:port`): usage API, admin API, metrics, dashboard.
    public var httpListen: String = "127.0.0.1:7480"
    /// Bearer token for the admin API; from `admin_token_env` in production.
    public var adminToken: String?
    /// A read-only bearer token for the usage API (`/v1/usage*`, `/v1/settlements`); from
    /// `usage_token_env` in production. With either token set, the usage API needs one of them.
    public var usageToken: String?
    /// Token that guards `/dashboard` and its JSON (HTTP Basic password or Bearer); nil leaves them open.
    public var dashboardToken: String?
    /// Where usage and settlements go after Redis committed them (`sinks:`); none by default.
    public var sinks = SinkSettings()

    /// Defaults for a single collector on loopback.
    public init() {}
}

/// One sidecar's own settings.
public struct SidecarSettings: Sendable {
    /// A stable name for this sidecar (batches are identified by it); defaults to `sidecar`.
    public var id: String = "sidecar"
    /// Proxy listen address (`host:port`).
    public var listen: String = "127.0.0.1:8080"
    /// Admin listen address: health, metrics, local check/report API.
    public var adminListen: String = "127.0.0.1:8081"
    /// The upstream base URL, e.g. `http://127.0.0.1:9000`.
    public var upstream: String = "http://127.0.0.1:9000"
    /// Collector ROUTER endpoints to connect the DEALER to (several for failover).
    public var collectors: [String] = ["tcp://127.0.0.1:7401"]
    /// Collector PUB endpoints to subscribe to.
    public var updates: [String] = ["tcp://127.0.0.1:7402"]
    /// An extra header that carries the API key, besides `Authorization: Bearer` and `X-API-Key`.
    public var keyHeader: String?
    /// Plan for callers without a key, identified by client IP; nil refuses them with 401.
    public var anonymousPlan: String?
    /// Directory of the on-disk spool of unacknowledged batches.
    public var spoolDirectory: String = "/var/lib/tollgate/spool"
    /// Heartbeat interval, milliseconds.
    public var heartbeatIntervalMs: Int = 1_000
    /// Path prefixes and the feature their calls count against (longest prefix wins); others count as `api_call`.
    public var routes: [(prefix: String, feature: String)] = []
    /// Largest request body the proxy accepts, bytes (413 above it).
    public var maxRequestBodyBytes: Int = 10 << 20
    /// Upstream read timeout, milliseconds (504 past it).
    public var upstreamTimeoutMs: Int = 30_000
    /// Spool size bound, bytes; when full the sidecar stops accepting usage and reports unready.
    public var spoolMaxBytes: Int = 512 << 20
    /// Spool fsync policy: `always`, `never`, or a period in milliseconds (`100`).
    public var spoolFsync: String = "100"
    /// Event loop threads of the proxy; nil: one per core.
    public var threads: Int?

    /// Defaults for a sidecar on loopback.
    public init() {}
}

extension CollectorSettings {
    static func parse(_ node: ConfigNode, environment: ConfigEnvironment) throws(ConfigError) -> CollectorSettings {
        let map = try node.mapping()
        var settings = CollectorSettings()
        if let value = map.optional("id") { settings.id = try value.nonEmptyString() }
        if let value = map.optional("router") { settings.routerBind = try value.endpoint() }
        if let value = map.optional("publish") { settings.publishBind = try value.endpoint() }
        if let value = map.optional("http") { settings.httpListen = try value.hostPort() }
        settings.adminToken = try map.secret("admin_token", in: environment)
        if let token = settings.adminToken, token.utf8.count < 16 {
            throw node.error(.invalidValue, "admin_token must be at least 16 characters")
        }
        settings.usageToken = try map.secret("usage_token", in: environment)
        if let token = settings.usageToken, token.utf8.count < 16 {
            throw node.error(.invalidValue, "usage_token must be at least 16 characters")
        }
        settings.dashboardToken = try map.secret("dashboard_token", in: environment)
        if let token = settings.dashboardToken, token.utf8.count < 16 {
            throw node.error(.invalidValue, "dashboard_token must be at least 16 characters")
        }
        if let value = map.optional("sinks") { settings.sinks = try SinkSettings.parse(value, environment: environment) }
        try map.finish()
        return settings
    }
}

extension SidecarSettings {
    static func parse(_ node: ConfigNode) throws(ConfigError) -> SidecarSettings {
        let map = try node.mapping()
        var settings = SidecarSettings()
        if let value = map.optional("id") { settings.id = try value.nonEmptyString() }
        if let value = map.optional("listen") { settings.listen = try value.hostPort() }
        if let value = map.optional("admin") { settings.adminListen = try value.hostPort() }
        if let value = map.optional("upstream") {
            let url = try value.nonEmptyString()
            guard url.hasPrefix("http://") else { throw value.error(.invalidValue, "upstream must be an http:// URL") }
            settings.upstream = url
        }
        if let value = map.optional("collectors") { settings.collectors = try value.endpoints() }
        if let value = map.optional("updates") { settings.updates = try value.endpoints() }
        if let value = map.optional("key_header") { settings.keyHeader = try value.nonEmptyString() }
        if let value = map.optional("anonymous_plan") { settings.anonymousPlan = try value.nonEmptyString() }
        if let value = map.optional("spool_dir") { settings.spoolDirectory = try value.nonEmptyString() }
        if let value = map.optional("heartbeat_interval_ms") { settings.heartbeatIntervalMs = try value.int(in: 10...600_000) }
        if let value = map.optional("routes") {
            for item in try value.sequence() {
                let route = try item.mapping()
                let prefixNode = try route.required("prefix")
                let prefix = try prefixNode.nonEmptyString()
                guard prefix.hasPrefix("/") else { throw prefixNode.error(.invalidValue, "a route prefix starts with /") }
                let featureNode = try route.required("feature")
                let feature = try featureNode.nonEmptyString()
                guard feature.isIdentifier else { throw featureNode.error(.invalidValue, "feature names use letters, digits, - and _") }
                try route.finish()
                settings.routes.append((prefix, feature))
            }
        }
        if let value = map.optional("max_request_body_bytes") { settings.maxRequestBodyBytes = try value.int(in: 0...(1 << 34)) }
        if let value = map.optional("upstream_timeout_ms") { settings.upstreamTimeoutMs = try value.int(in: 1...3_600_000) }
        if let value = map.optional("threads") { settings.threads = try value.int(in: 1...256) }
        if let value = map.optional("spool_max_bytes") { settings.spoolMaxBytes = try value.int(in: (1 << 20)...(1 << 40)) }
        if let value = map.optional("spool_fsync") {
            let text = try value.nonEmptyString()
            guard text == "always" || text == "never" || (Int(text).map { (1...60_000).contains($0) } ?? false) else {
                throw value.error(.invalidValue, "expected always, never, or milliseconds between fsyncs (1..60000)")
            }
            settings.spoolFsync = text
        }
        try map.finish()
        return settings
    }
}

extension ConfigNode {
    /// A ZeroMQ endpoint: `tcp://host:port`, `ipc://path` or `inproc://name`.
    func endpoint() throws(ConfigError) -> String {
        let value = try nonEmptyString()
        guard ["tcp://", "ipc://", "inproc://"].contains(where: { value.hasPrefix($0) }), value.utf8.count > 8 else {
            throw error(.invalidValue, "expected a ZeroMQ endpoint such as tcp://127.0.0.1:7401, got \"\(value)\"")
        }
        return value
    }

    func endpoints() throws(ConfigError) -> [String] {
        let items: [ConfigNode]
        if case .scalar = node { items = [self] } else { items = try sequence() }
        guard !items.isEmpty else { throw error(.invalidValue, "needs at least one endpoint") }
        return try items.map { item throws(ConfigError) in try item.endpoint() }
    }

    /// `host:port` with a port in 1...65535.
    func hostPort() throws(ConfigError) -> String {
        let value = try nonEmptyString()
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]),
              (1...65_535).contains(port), colon > value.startIndex
        else { throw error(.invalidValue, "expected host:port, got \"\(value)\"") }
        return value
    }
}
