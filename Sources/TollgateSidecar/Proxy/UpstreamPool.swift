import NIOCore
import NIOPosix

/// Keep-alive connections to the upstream for one event loop.
///
/// Threading: every method runs on `eventLoop`; client channels on that loop lease from it, so the
/// pool needs no lock. Idle connections are reused most-recently-released first (warm sockets).
final class UpstreamPool {
    let eventLoop: any EventLoop
    private let configuration: ProxyConfiguration
    private var idle: [UpstreamConnection] = []
    private var isClosed = false

    init(eventLoop: any EventLoop, configuration: ProxyConfiguration) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.idle.reserveCapacity(configuration.maxIdleUpstreamConnectionsPerLoop)
    }

    /// An idle open connection, if there is one.
    func takeIdle() -> UpstreamConnection? {
        while let connection = self.idle.popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    /// Opens a new connection on this loop.
    func connect() -> EventLoopFuture<UpstreamConnection> {
        let readTimeout = self.configuration.upstreamReadTimeout
        let maxHeadBytes = self.maxHeadBytes
        let pool = NIOLoopBound(self, eventLoop: self.eventLoop)
        return ClientBootstrap(group: self.eventLoop)
            .connectTimeout(self.configuration.upstreamConnectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamConnection(pool: pool.value, readTimeout: readTimeout, maxHeadBytes: maxHeadBytes)
                    )
                }
            }
            .connect(host: self.configuration.upstreamHost, port: self.configuration.upstreamPort)
            .flatMapThrowing { channel in
                try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
            }
    }

    /// Takes a connection back after a complete exchange; keeps it if open and there is room.
    func release(_ connection: UpstreamConnection) {
        connection.owner = nil
        connection.disarmReadTimeout()
        connection.resumeReads()
        if connection.isActive, !self.isClosed, self.idle.count < self.configuration.maxIdleUpstreamConnectionsPerLoop {
            self.idle.append(connection)
        } else {
            connection.close()
        }
    }

    /// Forgets a connection that closed (an idle one the upstream timed out, usually).
    func connectionClosed(_ connection: UpstreamConnection) {
        if let index = self.idle.lastIndex(where: { $0 === connection }) {
            self.idle.remove(at: index)
        }
    }

    /// Closes every idle connection and keeps no more (shutdown).
    func closeAll() {
        self.isClosed = true
        let idle = self.idle
        self.idle.removeAll()
        for connection in idle { connection.close() }
    }

    /// Largest response head taken from the upstream: at least 64 KiB, more if clients may send more.
    private var maxHeadBytes: Int {
        max(self.configuration.maxHeaderListBytes, 64 * 1024)
    }
}
