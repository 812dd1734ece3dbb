import CZeroMQ

/// One ZeroMQ socket: endpoints, multipart send and receive.
///
/// Threading: a socket belongs to one thread at a time and must only be used from it, because
/// libzmq sockets are not thread-safe. The type is deliberately not `Sendable`, so the compiler
/// keeps it from being shared; hand it to another thread only by giving it up (`sending`, as
/// ``ZMQSocketThread`` does), which gives the full memory barrier libzmq asks for.
/// Blocking calls (``receiveMessage()``, ``send(_:)``, ``poll(_:timeoutMilliseconds:)``) must run on
/// a thread that may block, never on the Swift cooperative pool.
///
/// ```swift
/// let router = try context.makeSocket(.router)
/// defer { router.close() }
/// try router.bind("tcp://127.0.0.1:*")
/// let frames = try router.receiveMessage()     // [routingID, payload...]
/// try router.send([frames[0], Array("ack".utf8)])
/// ```
///
/// Close every socket with ``close()`` before closing its context: ``ZMQContext/close()`` waits for
/// it. A socket keeps its context alive, so the context's handle outlives every call made here.
public final class ZMQSocket {
    /// The socket's type, fixed at creation.
    public let kind: ZMQSocketKind
    private let context: ZMQContext
    private var handle: LibZMQ.Handle?

    init(context: ZMQContext, kind: ZMQSocketKind, handle: LibZMQ.Handle) {
        self.context = context
        self.kind = kind
        self.handle = handle
    }

    deinit {
        assert(self.handle == nil, "\(self.kind) socket was not closed before deinit; call close()")
        if let handle = self.handle {
            LibZMQ.close(handle)
        }
    }

    /// True once ``close()`` has been called.
    public var isClosed: Bool { self.handle == nil }

    /// Closes the socket; idempotent. Unsent messages linger per ``ZMQSocketOption/linger``.
    public func close() {
        guard let handle = self.handle else { return }
        self.handle = nil
        LibZMQ.close(handle)
    }

    /// The live handle, or ENOTSOCK so a closed socket fails cleanly instead of touching freed memory.
    func liveHandle(for operation: String) throws(ZMQError) -> LibZMQ.Handle {
        guard let handle = self.handle else {
            throw ZMQError(code: .enotsock, operation: operation, detail: "socket is closed")
        }
        return handle
    }

    // MARK: Endpoints

    /// Accepts connections on `endpoint`, such as `tcp://127.0.0.1:*` or `inproc://name`.
    public func bind(_ endpoint: String) throws(ZMQError) {
        try LibZMQ.bind(self.liveHandle(for: "zmq_bind"), endpoint)
    }

    /// Connects to `endpoint`; ZeroMQ connects in the background and reconnects on its own.
    public func connect(_ endpoint: String) throws(ZMQError) {
        try LibZMQ.connect(self.liveHandle(for: "zmq_connect"), endpoint)
    }

    /// Stops accepting on `endpoint` (for a wildcard bind, pass ``lastEndpoint``).
    public func unbind(_ endpoint: String) throws(ZMQError) {
        try LibZMQ.unbind(self.liveHandle(for: "zmq_unbind"), endpoint)
    }

    /// Drops the connection to `endpoint`.
    public func disconnect(_ endpoint: String) throws(ZMQError) {
        try LibZMQ.disconnect(self.liveHandle(for: "zmq_disconnect"), endpoint)
    }

    // MARK: Sending

    /// Sends one message of `frames`, blocking while the high-water mark is reached.
    ///
    /// Fails with EAGAIN when ``ZMQSocketOption/sendTimeout`` runs out, with ETERM when the context
    /// shuts down, and with EHOSTUNREACH for an unknown peer on a ROUTER with ``ZMQSocketOption/routerMandatory``.
    public func send(_ frames: [[UInt8]]) throws(ZMQError) {
        try self.send(frames, firstFrameFlags: 0)
    }

    /// Sends one message of `frames` without blocking; returns false when it would have blocked.
    public func trySend(_ frames: [[UInt8]]) throws(ZMQError) -> Bool {
        do {
            try self.send(frames, firstFrameFlags: ZMQ_DONTWAIT)
            return true
        } catch where error.code == .eagain {
            return false
        }
    }

    private func send(_ frames: [[UInt8]], firstFrameFlags: Int32) throws(ZMQError) {
        precondition(!frames.isEmpty, "a ZeroMQ message has at least one frame")
        let handle = try self.liveHandle(for: "zmq_send")
        // Messages are atomic: once libzmq accepts the first frame, it accepts the rest without
        // blocking, so only the first frame needs ZMQ_DONTWAIT to report would-block.
        for (index, frame) in frames.enumerated() {
            var flags = index == 0 ? firstFrameFlags : 0
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            try LibZMQ.send(handle, frame, flags: flags)
        }
    }

    // MARK: Receiving

    /// Receives one whole message, blocking until it arrives.
    ///
    /// Fails with EAGAIN when ``ZMQSocketOption/receiveTimeout`` runs out and with ETERM when the
    /// context shuts down.
    public func receiveMessage() throws(ZMQError) -> [[UInt8]] {
        // A blocking receive never reports would-block, so there is always a message.
        try self.receiveMessage(firstFrameFlags: 0)!
    }

    /// Receives one whole message if one is waiting; returns nil instead of blocking.
    public func tryReceiveMessage() throws(ZMQError) -> [[UInt8]]? {
        try self.receiveMessage(firstFrameFlags: ZMQ_DONTWAIT)
    }

    private func receiveMessage(firstFrameFlags: Int32) throws(ZMQError) -> [[UInt8]]? {
        let handle = try self.liveHandle(for: "zmq_msg_recv")
        var frames: [[UInt8]] = []
        var more = true
        while more {
            // Messages arrive whole, so only the first frame can be missing.
            let flags = frames.isEmpty ? firstFrameFlags : 0
            let received: (frame: [UInt8], more: Bool)
            do {
                received = try LibZMQ.receive(handle, flags: flags)
            } catch where error.code == .eagain && flags & ZMQ_DONTWAIT != 0 {
                return nil
            }
            frames.append(received.frame)
            more = received.more
        }
        return frames
    }
}

// A ZeroMQ socket is not thread-safe: spell out that it must never be Sendable.
@available(*, unavailable)
extension ZMQSocket: Sendable {}
