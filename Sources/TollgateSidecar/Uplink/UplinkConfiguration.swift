import TollgateConfig

/// Settings of the usage uplink: identity, collectors, spool, timing.
public struct UplinkConfiguration: Sendable {
    /// The sidecar's stable id; batches are applied under (id, epoch, sequence).
    public var sidecarID: String
    /// Collector ROUTER endpoints; the DEALER connects to all and round-robins among the live ones.
    public var endpoints: [String]
    /// Directory of the spool.
    public var spoolDirectory: String
    /// Spool size, segment and fsync settings.
    public var spool = SpoolOptions()
    /// ZeroMQ frame limit, high-water marks, reconnect backoff and CURVE.
    public var zeroMQ = ZeroMQSettings()
    /// How often a Heartbeat goes out.
    public var heartbeatInterval: Duration = .seconds(1)
    /// The link counts as up while a reply arrived within this many heartbeat intervals.
    public var connectedHeartbeats = 3
    /// Batches sent and not yet acknowledged, at most.
    public var maxInFlight = 64
    /// With this many batches unacknowledged or unsent, the uplink counts as backlogged and the
    /// recorder holds batches open up to its `backlogFlushInterval`; default 4.
    public var backlogBatches = 4
    /// The first retry delay; it doubles per attempt up to `retryMax`, each scaled by a random 0.5...1.
    public var retryInitial: Duration = .milliseconds(200)
    /// The ceiling of the retry delay.
    public var retryMax: Duration = .seconds(5)
    /// How long a stopping uplink keeps waiting for acks before it closes (the spool keeps the rest).
    public var drainTimeout: Duration = .seconds(2)
    /// The longest poll: bounds how late the thread notices a stop or a batch whose time is up.
    public var pollInterval: Duration = .milliseconds(5)
    /// Reported in Hello.
    public var softwareVersion = "tollgate/0"
    /// The highest quota-update version this sidecar applied; sent in Hello and heartbeats.
    public var updateVersion: UpdateVersion = UpdateVersion()
    /// Called (on the uplink thread) when a collector says this sidecar missed updates: the caches
    /// built from them must be refreshed. Must not block.
    public var onResync: (@Sendable () -> Void)?

    /// Creates a configuration with defaults for everything else.
    public init(sidecarID: String, endpoints: [String], spoolDirectory: String) {
        self.sidecarID = sidecarID
        self.endpoints = endpoints
        self.spoolDirectory = spoolDirectory
    }

    /// The uplink part of a sidecar's configuration file.
    public init(sidecar: SidecarSettings, zeroMQ: ZeroMQSettings) {
        self.init(sidecarID: sidecar.id, endpoints: sidecar.collectors, spoolDirectory: sidecar.spoolDirectory)
        self.zeroMQ = zeroMQ
        self.heartbeatInterval = .milliseconds(sidecar.heartbeatIntervalMs)
        self.spool.maxBytes = sidecar.spoolMaxBytes
        switch sidecar.spoolFsync {
        case "always": self.spool.fsync = .always
        case "never": self.spool.fsync = .never
        default: self.spool.fsync = .interval(milliseconds: Int(sidecar.spoolFsync) ?? 100)
        }
    }

    func validate() throws(UplinkError) {
        guard !sidecarID.isEmpty else { throw UplinkError(.invalidConfiguration, "sidecarID is empty") }
        guard !endpoints.isEmpty else { throw UplinkError(.invalidConfiguration, "no collector endpoints") }
        guard maxInFlight >= 1 else { throw UplinkError(.invalidConfiguration, "maxInFlight must be at least 1") }
        guard backlogBatches >= 1 else { throw UplinkError(.invalidConfiguration, "backlogBatches must be at least 1") }
        guard retryInitial > .zero, retryMax >= retryInitial else {
            throw UplinkError(.invalidConfiguration, "retry delays must be positive, retryMax at least retryInitial")
        }
        guard heartbeatInterval > .zero, pollInterval > .zero else {
            throw UplinkError(.invalidConfiguration, "heartbeatInterval and pollInterval must be positive")
        }
        try spool.validate()
    }
}

extension Duration {
    /// Whole milliseconds, at least 0, saturated to Int.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        let ms = seconds.multipliedReportingOverflow(by: 1_000)
        return ms.overflow ? .max : Int(clamping: ms.partialValue + attoseconds / 1_000_000_000_000_000)
    }
}
