import Foundation
import Logging
import TollgateConfig
import TollgateWire
import TollgateZeroMQ

/// Publishes `QuotaUpdate`s to the sidecars on the collector's PUB socket, from a thread of its own.
///
/// Threading: the handle is `Sendable`, and ``publish(_:)`` may be called from any thread or task
/// (HTTP handlers, the ingest thread): it encodes the update, appends it to a locked queue and
/// wakes the publisher thread through an inproc PAIR socket, so it never blocks and never touches
/// the PUB socket, which lives on the publisher thread alone. Each message is two frames, the
/// topic (`u.<key id>`, or `u.*` for an update without a key) and one encoded `Envelope`.
///
/// Updates published before ``start()`` wait in the queue; after ``stop()`` they are dropped and
/// counted. A PUB socket drops messages for subscribers that are slow or not yet connected (ZeroMQ
/// has no back pressure on PUB): the version in every update is how a sidecar notices a gap.
///
/// ```swift
/// let publisher = UpdatePublisher(bind: "tcp://127.0.0.1:7402", logger: logger)
/// try await publisher.start()
/// var update = Tollgate_V1_QuotaUpdate()
/// update.kind = .keyRevoked
/// update.keyID = keyID
/// update.version = version
/// publisher.publish(update)
/// await publisher.stop()
/// ```
public final class UpdatePublisher: QuotaUpdateSink {
    /// Where the PUB socket binds, as configured (`collector.publish`).
    public let bind: String
    private let state: PublisherState
    private let logger: Logger

    /// A publisher for `bind`; nothing is opened before ``start()``.
    ///
    /// - Parameters:
    ///   - highWaterMark: messages ZeroMQ queues per subscriber before it drops for that subscriber.
    ///   - maxQueued: updates waiting for the publisher thread before ``publish(_:)`` drops new ones.
    ///   - curve: the collector's CURVE keys and allowed sidecars; nil publishes over plain TCP.
    public init(
        bind: String,
        codec: WireCodec = WireCodec(),
        highWaterMark: Int = 10_000,
        maxQueued: Int = 100_000,
        curve: CurveSettings? = nil,
        logger: Logger
    ) {
        self.bind = bind
        self.state = PublisherState(codec: codec, highWaterMark: highWaterMark, maxQueued: maxQueued, curve: curve)
        self.logger = logger
    }

    /// The endpoint the socket is bound to (with the port a `tcp://host:*` bind picked), once started.
    public var boundEndpoint: String? { self.state.boundEndpoint }

    /// Binds the PUB socket and starts the thread; returns once bound, throws if binding fails. Call once.
    public func start() async throws {
        try await self.state.start(bind: self.bind, logger: self.logger)
    }

    /// Queues `update` for every subscriber of its topic; never blocks. Dropped (and counted) when
    /// the queue is full, the update does not encode, or the publisher was stopped.
    public func publish(_ update: Tollgate_V1_QuotaUpdate) {
        self.state.enqueue(update)
    }

    /// Sends what is queued, closes the socket and ends the thread; later updates are dropped.
    public func stop() async {
        await self.state.stop()
    }
}
