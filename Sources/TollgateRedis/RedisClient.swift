import Foundation

/// An async front for a `RedisConnection` that lives on a dedicated OS thread.
///
/// Threading: `Sendable`; call it from any task. Calls run one at a time, in arrival order, on
/// the client's own thread, so hiredis's blocking I/O never occupies the Swift concurrency pool
/// (two threads here) or an event loop. Each body gets the connection for its duration only.
/// A call already running is not cancelled by task cancellation; `commandTimeout` bounds it.
///
/// The connection is made on first use and reconnects as `RedisConnection` describes.
/// ```swift
/// let client = RedisClient(configuration: .init(host: "127.0.0.1", port: 6379))
/// let total = try await client.withConnection { try $0.send("INCRBY", "tg:{k1}:calls", 1).expectInteger() }
/// await client.shutdown()
/// ```
public final class RedisClient: Sendable {
    /// Where and how the client's connection connects.
    public let configuration: RedisConfiguration
    private let worker: Worker

    /// Starts the client's thread; the connection is opened by the first call.
    public init(configuration: RedisConfiguration) {
        self.configuration = configuration
        self.worker = Worker(configuration: configuration)
        let worker = self.worker
        let thread = Thread { worker.run() }
        thread.name = "tollgate-redis \(configuration.endpoint)"
        thread.start()
    }

    deinit {
        // Without this, a client dropped without `shutdown()` would keep its thread and socket forever.
        self.worker.requestShutdown(then: nil)
    }

    /// Runs `body` with the connection on the client's thread and returns its result.
    ///
    /// `body` must not keep the connection: it belongs to the client's thread.
    public func withConnection<T: Sendable>(_ body: @Sendable (RedisConnection) throws -> T) async throws -> T {
        try await withoutActuallyEscaping(body) { body in
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let rejected = self.worker.enqueue { connection in
                    // Runs on the worker thread. The result is computed here, but the continuation
                    // is resumed by the returned closure only after this job (which holds `body`)
                    // has been released: `withoutActuallyEscaping` checks that `body` did not escape.
                    let result: Result<T, any Error>
                    if let connection {
                        result = Result { try body(connection) }
                    } else {
                        result = .failure(RedisError(
                            code: .closed,
                            message: "the RedisClient was shut down",
                            endpoint: self.configuration.endpoint.description
                        ))
                    }
                    return { continuation.resume(with: result) }
                }
                // After shutdown the job is refused; complete it only now that it is released.
                rejected?()
            }
        }
    }

    /// Sends one command; a server error reply is thrown as `RedisError`.
    @discardableResult
    public func send(_ arguments: [RedisArgument]) async throws -> RedisReply {
        try await self.withConnection { try $0.send(arguments) }
    }

    /// Sends one command; a server error reply is thrown as `RedisError`.
    @discardableResult
    public func send(_ arguments: RedisArgument...) async throws -> RedisReply {
        try await self.send(arguments)
    }

    /// Sends the commands as one pipeline; error replies are returned, not thrown.
    public func pipeline(_ commands: [[RedisArgument]]) async throws -> [RedisReply] {
        try await self.withConnection { try $0.pipeline(commands) }
    }

    /// Runs a Lua script with `EVALSHA`, reloading it once on `NOSCRIPT`.
    @discardableResult
    public func evalScript(_ script: RedisScript, keys: [RedisArgument] = [], args: [RedisArgument] = []) async throws -> RedisReply {
        try await self.withConnection { try $0.evalScript(script, keys: keys, args: args) }
    }

    /// Finishes the calls already queued, closes the connection and ends the thread; later calls throw `.closed`.
    public func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            self.worker.requestShutdown { continuation.resume() }
        }
    }
}

/// The job queue and loop of a `RedisClient`'s thread.
///
/// A job gets the connection, or `nil` once the client is shut down, and returns the
/// completion to run after the job itself has been released.
// @unchecked Sendable: `jobs`, `isShuttingDown` and `onStopped` are only touched under
// `condition`; the `RedisConnection` exists only as a local of `run()`, on the worker thread.
private final class Worker: @unchecked Sendable {
    typealias Job = @Sendable (RedisConnection?) -> @Sendable () -> Void

    private let configuration: RedisConfiguration
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var isShuttingDown = false
    private var isStopped = false
    private var onStopped: [@Sendable () -> Void] = []

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    /// Queues `job`, or, once shutting down, runs it with `nil` and returns its completion for the caller to run.
    func enqueue(_ job: @escaping Job) -> (@Sendable () -> Void)? {
        self.condition.lock()
        defer { self.condition.unlock() }
        guard !self.isShuttingDown else {
            return job(nil)
        }
        self.jobs.append(job)
        self.condition.signal()
        return nil
    }

    func requestShutdown(then completion: (@Sendable () -> Void)?) {
        self.condition.lock()
        if self.isStopped {
            self.condition.unlock()
            completion?()
            return
        }
        self.isShuttingDown = true
        if let completion { self.onStopped.append(completion) }
        self.condition.signal()
        self.condition.unlock()
    }

    /// The thread's body: runs jobs in order until shut down and the queue is empty.
    func run() {
        let connection = RedisConnection(unconnected: self.configuration)
        while true {
            self.condition.lock()
            while self.jobs.isEmpty && !self.isShuttingDown {
                self.condition.wait()
            }
            var batch = self.jobs
            self.jobs = []
            let stopping = self.isShuttingDown && batch.isEmpty
            self.condition.unlock()
            if stopping { break }

            batch.reverse()
            while !batch.isEmpty {
                var job: Job? = batch.removeLast()
                let complete = job!(connection)
                job = nil
                complete()
            }
        }
        connection.close()
        self.condition.lock()
        self.isStopped = true
        let waiters = self.onStopped
        self.onStopped = []
        self.condition.unlock()
        for waiter in waiters { waiter() }
    }
}
