import CZeroMQ
import Foundation

/// A ZeroMQ context: the I/O threads and the registry that sockets are made from.
///
/// Thread-safe: any thread may make sockets from it, shut it down or close it.
///
/// ```swift
/// let context = try ZMQContext()
/// defer { context.close() }
/// let socket = try context.makeSocket(.dealer)
/// defer { socket.close() }
/// try socket.connect("tcp://127.0.0.1:5555")
/// ```
///
/// Ending a context takes two steps, which may come from different threads: ``shutdown()`` makes
/// every blocking call on its sockets fail with ETERM (so their owner threads close them and stop),
/// and ``close()`` waits for every socket to be closed and then frees the context.
// @unchecked Sendable: libzmq documents the context as thread-safe, and the only Swift state,
// `state`, is read and written under `lock`. Holding the lock across zmq_socket and
// zmq_ctx_shutdown keeps them from racing zmq_ctx_term, which would free the handle under them.
public final class ZMQContext: @unchecked Sendable {
    private enum State { case open, shutDown, terminating, closed }

    private let handle: LibZMQ.Handle
    private let lock = NSLock()
    private var state = State.open

    /// Creates a context with `ioThreads` background I/O threads (one carries about a gigabyte a second).
    public init(ioThreads: Int32 = 1) throws(ZMQError) {
        let handle = try LibZMQ.contextNew()
        do {
            try LibZMQ.contextSet(handle, ZMQ_IO_THREADS, ioThreads, name: "ZMQ_IO_THREADS")
        } catch {
            LibZMQ.contextTerm(handle)
            throw error
        }
        self.handle = handle
    }

    deinit {
        // Sockets hold their context, so by now every socket is gone and terminating cannot wait
        // on one; only messages still lingering on closed sockets can delay it.
        assert(self.state == .closed, "ZMQContext was not closed before deinit; call close()")
        if self.state != .closed {
            LibZMQ.contextTerm(self.handle)
        }
    }

    /// Makes a socket of `kind`; the caller's thread owns it (see ``ZMQSocket``).
    public func makeSocket(_ kind: ZMQSocketKind) throws(ZMQError) -> ZMQSocket {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard self.state == .open else {
            throw ZMQError(code: .eterm, operation: "zmq_socket", detail: "context is shut down")
        }
        let socket = try LibZMQ.socket(self.handle, kind.rawValue)
        return ZMQSocket(context: self, kind: kind, handle: socket)
    }

    /// True once ``shutdown()`` or ``close()`` has been called.
    public var isShutDown: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.state != .open
    }

    /// Makes every blocking call on this context's sockets fail with ETERM; never blocks.
    ///
    /// Idempotent. Sockets stay open: their owners must still close them before ``close()`` returns.
    public func shutdown() {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard self.state == .open else { return }
        LibZMQ.contextShutdown(self.handle)
        self.state = .shutDown
    }

    /// Terminates the context, blocking until every one of its sockets is closed.
    ///
    /// Interrupts blocking calls as ``shutdown()`` does, then waits; lingering outgoing messages can
    /// extend the wait (set ``ZMQSocketOption/linger`` to bound it). Call it from a thread that may
    /// block, never from the cooperative pool. Idempotent: a later or concurrent call returns at once,
    /// without waiting for the first to finish.
    public func close() {
        self.lock.lock()
        guard self.state == .open || self.state == .shutDown else {
            self.lock.unlock()
            return
        }
        self.state = .terminating
        self.lock.unlock()

        // Outside the lock: terminating waits for other threads, which may call shutdown().
        LibZMQ.contextTerm(self.handle)

        self.lock.lock()
        self.state = .closed
        self.lock.unlock()
    }
}
