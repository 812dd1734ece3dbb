import Foundation
import TollgateConfig
import TollgateWire
import TollgateZeroMQ

/// Request and reply with the collectors (key lookups now, leases and payments later) over a
/// DEALER socket of its own, owned by a dedicated thread.
///
/// Threading: every method is safe from any thread or task. The DEALER lives on the channel's
/// thread; callers hand it frames through a locked queue and wake it through an inproc PAIR
/// socket, so a request leaves at once instead of at the next poll tick.
///
/// ```swift
/// let channel = try CollectorRequestChannel(context: context, endpoints: ["tcp://127.0.0.1:7401"])
/// let reply = try await channel.request(.keyLookup(lookup), timeout: .milliseconds(500))
/// channel.stop()
/// ```
public final class CollectorRequestChannel: LeaseTransport {
    /// Why a request got no answer.
    public struct RequestError: Error, Hashable, Sendable {
        /// No collector answered in time (down, unreachable, or overloaded).
        public static let timedOut = RequestError(reason: "timed out")
        /// The channel was stopped.
        public static let stopped = RequestError(reason: "channel stopped")
        /// What happened.
        public let reason: String
    }

    private let state: ChannelState
    private let thread: ZMQSocketThread

    /// Connects a DEALER to every endpoint and starts the channel's thread.
    public init(
        context: ZMQContext,
        endpoints: [String],
        codec: WireCodec = WireCodec(),
        reconnectIntervalMs: Int32 = 100,
        reconnectIntervalMaxMs: Int32 = 2_000,
        curve: CurveSettings? = nil
    ) throws {
        let wakeName = "inproc://tollgate-request-wake-\(UInt64.random(in: 0...UInt64.max))"
        let wakeReceiver = try context.makeSocket(.pair)
        try wakeReceiver.setOption(.linger, to: 0)
        try wakeReceiver.bind(wakeName)
        let wakeSender = try context.makeSocket(.pair)
        try wakeSender.setOption(.linger, to: 0)
        try wakeSender.connect(wakeName)
        let dealer = try context.makeSocket(.dealer)
        try dealer.setOption(.linger, to: 0)
        // Queue only to collectors that are connected, so a dead endpoint does not swallow requests.
        try dealer.setOption(.immediate, to: true)
        try dealer.setOption(.reconnectInterval, to: reconnectIntervalMs)
        try dealer.setOption(.reconnectIntervalMax, to: reconnectIntervalMaxMs)
        try dealer.setOption(.maxMessageSize, to: Int64(codec.maxFrameBytes))
        try dealer.secureAsCollectorClient(curve)
        for endpoint in endpoints { try dealer.connect(endpoint) }

        let state = ChannelState(codec: codec, wake: WakeSocket(wakeSender))
        self.state = state
        self.thread = ZMQSocketThread.start(name: "tollgate-requests") { thread in
            defer {
                // One-way messages queued last (lease returns at shutdown) still go out: flush them
                // and give the socket a moment to deliver before it closes.
                for entry in state.takeOutbox() { _ = try? dealer.trySend([entry.frame]) }
                try? dealer.setOption(.linger, to: 200)
                dealer.close()
                wakeReceiver.close()
                state.failAll(.stopped)
            }
            try state.loop(thread: thread, dealer: dealer, wake: wakeReceiver)
        }
    }

    /// Sends `body` to a collector and waits for the reply with the same correlation id.
    public func request(_ body: Tollgate_V1_Envelope.OneOf_Body, timeout: Duration) async throws -> Tollgate_V1_Envelope {
        let deadline = ContinuousClock.now + timeout
        return try await withCheckedThrowingContinuation { continuation in
            state.enqueue(body, deadline: deadline) { continuation.resume(with: $0) }
        }
    }

    /// Sends `body` to a collector and calls `completion` with the reply, or the failure, on the
    /// channel's thread: for a caller on an event loop, which then hops straight back to it rather
    /// than through a task (one thread wake-up fewer each way).
    public func request(
        _ body: Tollgate_V1_Envelope.OneOf_Body, timeout: Duration,
        completion: @escaping @Sendable (Result<Tollgate_V1_Envelope, any Error>) -> Void
    ) {
        state.enqueue(body, deadline: ContinuousClock.now + timeout, reply: completion)
    }

    /// Sends `body` to a collector without waiting for a reply; dropped if none is connected.
    public func send(_ body: Tollgate_V1_Envelope.OneOf_Body) {
        state.enqueueOneWay(body)
    }

    /// Stops the thread; pending requests fail with ``RequestError/stopped``.
    public func stop() {
        thread.requestStop()
        state.wake.signal()
        try? thread.join()
        state.wake.close()
    }
}

/// The wake-up sender: a ZeroMQ socket used from many threads, one at a time.
// @unchecked Sendable: the socket is only touched under `lock`, and a mutex hand-off is the full
// memory barrier libzmq asks for when a socket moves between threads.
final class WakeSocket: @unchecked Sendable {
    private let lock = NSLock()
    private var socket: ZMQSocket?

    init(_ socket: ZMQSocket) { self.socket = socket }

    func signal() {
        lock.withLock { _ = try? socket?.trySend([[]]) }
    }

    func close() {
        lock.withLock {
            socket?.close()
            socket = nil
        }
    }
}
