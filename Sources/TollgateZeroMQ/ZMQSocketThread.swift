import Foundation

/// A dedicated OS thread that runs one socket loop, so ZeroMQ's blocking calls stay off the
/// Swift cooperative pool.
///
/// Threading: the handle is `Sendable` and any thread may stop or join it. The body runs on the
/// new thread and owns every socket it makes or is handed (`sending`): sockets are not thread-safe,
/// so nothing else may touch them while it runs.
///
/// ```swift
/// let echo = ZMQSocketThread.start(name: "echo") { thread in
///     let router = try context.makeSocket(.router)
///     defer { router.close() }
///     try router.bind("inproc://echo")
///     while !thread.isStopRequested {
///         // Poll with a timeout so the stop flag is seen promptly.
///         guard try router.poll(.readable, timeoutMilliseconds: 100).contains(.readable) else { continue }
///         try router.send(try router.receiveMessage())
///     }
/// }
/// echo.requestStop()
/// try await echo.join()
/// ```
///
/// The body stops either by checking ``isStopRequested`` between polls, or by failing with ETERM
/// once its context is shut down (``ZMQContext/shutdown()``); either way it must close its sockets
/// before returning, or ``ZMQContext/close()`` waits for them forever.
// @unchecked Sendable: `name` is immutable and every other stored property is guarded by `condition`.
public final class ZMQSocketThread: @unchecked Sendable {
    /// The thread's name, as debuggers and `top -H` show it.
    public let name: String
    private let condition = NSCondition()
    private var stopRequested = false
    private var outcome: Result<Void, any Error>?
    private var waiters: [CheckedContinuation<Void, Never>] = []

    private init(name: String) {
        self.name = name
    }

    /// Starts a thread running `body`, which receives this handle to check for a stop request.
    ///
    /// `body` is `sending`, so it may capture sockets the caller gives up: the thread start is the
    /// full memory barrier libzmq requires when a socket changes threads.
    public static func start(
        name: String,
        _ body: sending @escaping (ZMQSocketThread) throws -> Void
    ) -> ZMQSocketThread {
        let handle = ZMQSocketThread(name: name)
        let transfer = Transfer(body)
        let thread = Thread { handle.main(transfer.value) }
        thread.name = name
        thread.start()
        return handle
    }

    /// Runs `body` on a new thread and awaits its result without blocking the caller's thread.
    ///
    /// Cancelling the awaiting task requests a stop; the call still waits for `body` to return,
    /// so the sockets it owns are closed by the time this returns.
    public static func run<Success: Sendable>(
        name: String,
        _ body: sending @escaping (ZMQSocketThread) throws -> Success
    ) async throws -> Success {
        let result = ResultBox<Success>()
        let thread = ZMQSocketThread.start(name: name) { thread in
            result.value = try body(thread)
        }
        try await withTaskCancellationHandler {
            try await thread.join()
        } onCancel: {
            thread.requestStop()
        }
        // join() succeeded, so the body returned normally and stored its value.
        return result.value!
    }

    /// True once ``requestStop()`` was called; the body checks it between polls.
    public var isStopRequested: Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.stopRequested
    }

    /// Asks the body to return at its next check of ``isStopRequested``; never blocks.
    public func requestStop() {
        self.condition.lock()
        self.stopRequested = true
        self.condition.unlock()
    }

    /// True once the body has returned or thrown.
    public var isFinished: Bool {
        self.finishedOutcome() != nil
    }

    /// Blocks the calling thread until the body returns, rethrowing its error; never call it from the cooperative pool.
    public func join() throws {
        self.condition.lock()
        while self.outcome == nil {
            self.condition.wait()
        }
        let outcome = self.outcome!
        self.condition.unlock()
        try outcome.get()
    }

    /// Suspends until the body returns, rethrowing its error, without blocking a thread.
    public func join() async throws {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if !self.enqueueUnlessFinished(continuation) {
                continuation.resume()
            }
        }
        // Resumed only after main() stored the outcome.
        try self.finishedOutcome()!.get()
    }

    /// Keeps `continuation` for main() to resume; false when the body has already finished.
    private func enqueueUnlessFinished(_ continuation: CheckedContinuation<Void, Never>) -> Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        guard self.outcome == nil else { return false }
        self.waiters.append(continuation)
        return true
    }

    private func finishedOutcome() -> Result<Void, any Error>? {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.outcome
    }

    private func main(_ body: (ZMQSocketThread) throws -> Void) {
        let outcome = Result { try body(self) }
        self.condition.lock()
        self.outcome = outcome
        let waiters = self.waiters
        self.waiters = []
        self.condition.broadcast()
        self.condition.unlock()
        for waiter in waiters {
            waiter.resume()
        }
    }
}

// @unchecked Sendable: carries a `sending` closure, which no one else holds, onto the new thread.
private struct Transfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

// @unchecked Sendable: written once on the thread before it finishes and read only after join(),
// whose lock orders the write before the read.
private final class ResultBox<Value>: @unchecked Sendable {
    var value: Value?
}
