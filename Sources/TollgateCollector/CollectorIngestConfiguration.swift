import TollgateConfig
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateWire

/// What the ingest thread needs: where to listen, how to reach Redis, and its limits.
public struct CollectorIngestConfiguration: Sendable {
    /// The collector's name in HelloAck and logs.
    public var collectorID: String
    /// The ROUTER endpoint to bind, e.g. `tcp://127.0.0.1:7401`.
    public var routerBind: String
    /// The Redis connection of the ingest thread.
    public var redis: RedisConfiguration
    /// Frames above this size are refused (ZMQ_MAXMSGSIZE and the wire codec); default 4 MiB.
    public var maxFrameBytes: Int = WireCodec.defaultMaxFrameBytes
    /// Send and receive high-water mark, in messages; default 10,000.
    public var highWaterMark: Int = 10_000
    /// CURVE: the collector's keys and the sidecars it admits; nil (or no server secret key) serves plain TCP.
    public var curve: CurveSettings?
    /// How long one poll waits before the stop flag is checked again; default 100 ms.
    public var pollInterval: Duration = .milliseconds(100)
    /// Marker and counter lifetimes, and batch limits.
    public var store = UsageStore.Configuration()
    /// How many batches are merged into one group of script calls, and how many groups are in Redis at once.
    public var pipeline = UsagePipelineOptions()
    /// How long a silent sidecar still counts as connected; default 5 s.
    public var sidecarStaleAfter: Duration = .seconds(5)
    /// Lease sizes, lifetimes and reclaim grace.
    public var leases = LeaseStore.Configuration()
    /// The time periods and leases are computed from; tests inject one.
    public var clock: any TollgateClock = WallClock()
    /// Where the ingest thread raises quota updates (exhausted); nil raises none.
    public var updates: (any QuotaUpdateSink)?
    /// Carries out x402 payments sidecars send; nil answers them UNSUPPORTED.
    public var payments: PaymentCoordinator?
    /// Counts applied batches and calls and samples them for the dashboard's ingest rate; nil counts nothing.
    public var ingestRate: IngestRate?
    /// Where applied batches go after Redis answered (audit log, Stripe); nil feeds none. With
    /// sinks, a batch is acknowledged once the sink thread has handed it to every sink (so an acked
    /// batch is always in the audit log), or at once when the sink queue is full.
    public var sinks: SinkFanOut?

    /// Settings with defaults besides the id, endpoint and Redis connection.
    public init(collectorID: String, routerBind: String, redis: RedisConfiguration) {
        self.collectorID = collectorID
        self.routerBind = routerBind
        self.redis = redis
    }

    /// The settings a Tollgate configuration file gives.
    public init(_ configuration: TollgateConfiguration) {
        self.init(
            collectorID: configuration.collector.id,
            routerBind: configuration.collector.routerBind,
            redis: configuration.redis.clientConfiguration
        )
        self.maxFrameBytes = configuration.zeromq.maxFrameBytes
        self.highWaterMark = configuration.zeromq.highWaterMark
        self.curve = configuration.zeromq.curve
        self.sidecarStaleAfter = .milliseconds(5 * configuration.sidecar.heartbeatIntervalMs)
    }
}

extension RedisSettings {
    /// The `RedisConfiguration` these settings describe (unix socket if set, else TCP).
    public var clientConfiguration: RedisConfiguration {
        RedisConfiguration(
            endpoint: self.unixSocket.map { .unixSocket(path: $0) } ?? .tcp(host: self.host, port: self.port),
            connectTimeout: .milliseconds(self.connectTimeoutMs),
            commandTimeout: .milliseconds(self.commandTimeoutMs),
            username: self.username,
            password: self.password,
            database: self.database
        )
    }
}
