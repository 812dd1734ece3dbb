import NIOCore
import NIOHTTP1
import TollgateConfig

/// What the proxy keeps per event loop: the upstream pool, a cache of key ids, and the open client
/// channels (for graceful shutdown).
///
/// Threading: every member is used only on `eventLoop`. The server builds one per loop before it
/// binds and never changes the set, so handlers find theirs without a lock.
final class ProxyLoop: @unchecked Sendable {  // @unchecked: confined to `eventLoop`, see above.
    let eventLoop: any EventLoop
    let pool: UpstreamPool
    private var keyIDs: [String: String] = [:]
    private var channels: [ObjectIdentifier: any Channel] = [:]
    private var quiescing = false
    private var drained: EventLoopPromise<Void>?

    /// Most raw keys whose hash is remembered; the cache is dropped whole when it fills (keys are few).
    static let maxCachedKeys = 10_000

    init(eventLoop: any EventLoop, configuration: ProxyConfiguration) {
        self.eventLoop = eventLoop
        self.pool = UpstreamPool(eventLoop: eventLoop, configuration: configuration)
    }

    /// The key id (hex SHA-256) of a raw API key, hashed once per loop and key.
    func keyID(for rawKey: String) -> String {
        if let id = self.keyIDs[rawKey] { return id }
        if self.keyIDs.count >= Self.maxCachedKeys { self.keyIDs.removeAll(keepingCapacity: true) }
        let id = APIKeyHasher.keyID(for: rawKey)
        self.keyIDs[rawKey] = id
        return id
    }

    /// Tracks an accepted client channel; returns false when shutting down (the channel is closed).
    func register(_ channel: any Channel) -> Bool {
        if self.quiescing { return false }
        self.channels[ObjectIdentifier(channel)] = channel
        return true
    }

    /// Forgets a closed client channel.
    func unregister(_ channel: any Channel) {
        self.channels.removeValue(forKey: ObjectIdentifier(channel))
        if self.quiescing, self.channels.isEmpty {
            self.drained?.succeed()
            self.drained = nil
        }
    }

    /// Asks every client channel to finish its in-flight request and close; succeeds when all closed.
    func quiesce() -> EventLoopFuture<Void> {
        self.quiescing = true
        if self.channels.isEmpty { return self.eventLoop.makeSucceededVoidFuture() }
        let promise = self.drained ?? self.eventLoop.makePromise()
        self.drained = promise
        for channel in self.channels.values {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        return promise.futureResult
    }

    /// Closes whatever client channels are left, and the idle upstream connections.
    func forceClose() {
        for channel in self.channels.values { channel.close(promise: nil) }
        self.pool.closeAll()
    }
}
