import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The sidecar's HTTP/1.1 reverse proxy: identifies each caller's API key, forwards the request to
/// the one upstream over pooled keep-alive connections, and records a usage event per call.
///
/// Threading: `start`/`shutdown` are actor-isolated; requests are served entirely on the event
/// loops (one upstream pool per loop, no locks, no task hops once a key is cached).
///
/// ```swift
/// let proxy = ProxyServer(configuration: configuration, resolver: resolver, recorder: recorder)
/// let port = try await proxy.start()
/// // ...
/// await proxy.shutdown()
/// ```
/// As a `Service`, `run()` starts it and shuts it down gracefully when the service group asks.
public actor ProxyServer: Service {
    /// The configuration it was made with.
    public nonisolated let configuration: ProxyConfiguration
    private let shared: ProxyShared
    private let group: any EventLoopGroup
    private let ownsGroup: Bool
    private let loops: [ObjectIdentifier: ProxyLoop]
    private let logger: Logger
    private var serverChannel: (any Channel)?
    private var state = State.idle

    private enum State { case idle, running, stopped }

    /// Creates a proxy; with no `group` it makes (and later shuts down) one of `eventLoopThreads` threads.
    public init(
        configuration: ProxyConfiguration,
        resolver: any PrincipalResolver,
        recorder: any UsageRecorder,
        gate: QuotaGate? = nil,
        challenges: (any PaymentChallengeRenderer)? = nil,
        payments: PaymentChannel? = nil,
        group: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "tollgate.sidecar.proxy")
    ) {
        self.configuration = configuration
        self.shared = ProxyShared(configuration: configuration, resolver: resolver, recorder: recorder, gate: gate, challenges: challenges, payments: payments)
        if let group {
            self.group = group
            self.ownsGroup = false
        } else {
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
            self.ownsGroup = true
        }
        var loops: [ObjectIdentifier: ProxyLoop] = [:]
        for eventLoop in self.group.makeIterator() {
            loops[ObjectIdentifier(eventLoop)] = ProxyLoop(eventLoop: eventLoop, configuration: configuration)
        }
        self.loops = loops
        self.logger = logger
    }

    /// Binds the listening socket and starts serving; returns the bound port (useful with port 0).
    @discardableResult
    public func start() async throws -> Int {
        guard self.state == .idle else { throw ProxyError(.alreadyStarted, "start() called twice or after shutdown()") }
        let shared = self.shared
        let loops = self.loops
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let loop = loops[ObjectIdentifier(channel.eventLoop)] else {
                        throw ProxyError(.invalidConfiguration, "a channel on an event loop outside the proxy's group")
                    }
                    // One handler, on bytes: it reads requests and writes responses itself.
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ProxyHandler(shared: shared, loop: loop))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: self.configuration.listenHost, port: self.configuration.listenPort).get()
        } catch {
            throw ProxyError(.bindFailed, "\(self.configuration.listenHost):\(self.configuration.listenPort): \(error)")
        }
        self.serverChannel = channel
        self.state = .running
        let port = channel.localAddress?.port ?? self.configuration.listenPort
        self.logger.info(
            "proxy listening",
            metadata: [
                "tollgate.sidecar.listen": "\(self.configuration.listenHost):\(port)",
                "tollgate.sidecar.upstream": "\(self.configuration.upstreamHost):\(self.configuration.upstreamPort)",
            ]
        )
        return port
    }

    /// The bound port while running.
    public var port: Int? { self.serverChannel?.localAddress?.port }

    /// Stops accepting, lets in-flight requests finish for up to `shutdownGracePeriod`, then closes
    /// every connection (and the event loop group if the proxy made it). Safe to call more than once.
    public func shutdown() async {
        guard self.state != .stopped else { return }
        let wasRunning = self.state == .running
        self.state = .stopped
        if wasRunning {
            try? await self.serverChannel?.close()
            self.serverChannel = nil
            let drained = self.loops.values.map { loop in loop.eventLoop.flatSubmit { loop.quiesce() } }
            let eventLoop = self.group.next()
            let done = eventLoop.makePromise(of: Void.self)
            EventLoopFuture.andAllComplete(drained, on: eventLoop).cascade(to: done)
            let timer = eventLoop.scheduleTask(in: self.configuration.shutdownGracePeriod) { done.succeed() }
            try? await done.futureResult.get()
            timer.cancel()
            let closed = self.loops.values.map { loop in loop.eventLoop.submit { loop.forceClose() } }
            try? await EventLoopFuture.andAllComplete(closed, on: eventLoop).get()
        }
        if self.ownsGroup { try? await self.group.shutdownGracefully() }
        self.logger.info("proxy stopped")
    }

    /// Runs as a `Service`: starts (unless started) and shuts down gracefully on the group's signal.
    public func run() async throws {
        if self.state == .idle { try await self.start() }
        try? await gracefulShutdown()
        await self.shutdown()
    }
}
