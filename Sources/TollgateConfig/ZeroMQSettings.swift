/// ZeroMQ transport settings shared by sidecars and collectors.
public struct ZeroMQSettings: Hashable, Sendable {
    /// Frames above this size are refused by the receiver (ZMQ_MAXMSGSIZE and the wire codec).
    public var maxFrameBytes: Int = 4 << 20
    /// Send and receive high-water mark, in messages.
    public var highWaterMark: Int = 10_000
    /// Reconnect interval, milliseconds, and its backoff ceiling.
    public var reconnectIntervalMs: Int = 100
    /// The ceiling of the exponential reconnect backoff, milliseconds.
    public var reconnectIntervalMaxMs: Int = 5_000
    /// CURVE encryption; nil means plain TCP (fine on loopback, not across hosts).
    public var curve: CurveSettings?

    /// Defaults: 4 MiB frames, HWM 10,000, reconnect 100 ms up to 5 s, no CURVE.
    public init() {}
}

/// CURVE keys, Z85 text (40 characters each). The collector needs its key pair; each sidecar needs
/// its own pair and the collector's public key.
public struct CurveSettings: Hashable, Sendable {
    /// The collector's public key, known to everyone.
    public var serverPublicKey: String
    /// The collector's secret key (collector only), from `server_secret_key_env`.
    public var serverSecretKey: String?
    /// This sidecar's public key (sidecar only).
    public var clientPublicKey: String?
    /// This sidecar's secret key (sidecar only), from `client_secret_key_env`.
    public var clientSecretKey: String?
    /// The sidecars' public keys a collector admits (collector only). Empty: any client that knows
    /// the server's public key may connect (encrypted, but not authenticated).
    public var allowedClientKeys: [String] = []
}

extension ZeroMQSettings {
    static func parse(_ node: ConfigNode, environment: ConfigEnvironment) throws(ConfigError) -> ZeroMQSettings {
        let map = try node.mapping()
        var settings = ZeroMQSettings()
        if let value = map.optional("max_frame_bytes") { settings.maxFrameBytes = try value.int(in: 1_024...(256 << 20)) }
        if let value = map.optional("high_water_mark") { settings.highWaterMark = try value.int(in: 1...10_000_000) }
        if let value = map.optional("reconnect_interval_ms") { settings.reconnectIntervalMs = try value.int(in: 1...600_000) }
        if let value = map.optional("reconnect_interval_max_ms") { settings.reconnectIntervalMaxMs = try value.int(in: 1...600_000) }
        if let curveNode = map.optional("curve") {
            let curve = try curveNode.mapping()
            func key(_ name: String) throws(ConfigError) -> String? {
                guard let value = try curve.secret(name, in: environment) else { return nil }
                guard value.utf8.count == 40 else {
                    throw curveNode.error(.invalidValue, "\(name) must be a 40-character Z85 CURVE key")
                }
                return value
            }
            guard let serverPublic = try key("server_public_key") else {
                throw ConfigError(.missingKey, path: curveNode.path + ".server_public_key", location: curveNode.location, "is required when curve is set")
            }
            settings.curve = CurveSettings(
                serverPublicKey: serverPublic,
                serverSecretKey: try key("server_secret_key"),
                clientPublicKey: try key("client_public_key"),
                clientSecretKey: try key("client_secret_key")
            )
            if let list = curve.optional("allowed_client_keys") {
                let keys = try list.stringList()
                for key in keys where key.utf8.count != 40 {
                    throw list.error(.invalidValue, "every allowed client key is a 40-character Z85 CURVE public key, not \"\(key.prefix(48))\"")
                }
                settings.curve?.allowedClientKeys = keys
            }
            if (settings.curve?.clientPublicKey == nil) != (settings.curve?.clientSecretKey == nil) {
                throw curveNode.error(.inconsistent, "client_public_key and client_secret_key go together")
            }
            try curve.finish()
        }
        try map.finish()
        guard settings.reconnectIntervalMaxMs >= settings.reconnectIntervalMs else {
            throw node.error(.inconsistent, "reconnect_interval_max_ms must be at least reconnect_interval_ms")
        }
        return settings
    }
}
