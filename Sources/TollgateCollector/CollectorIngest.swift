import Foundation
import Logging
import TollgateZeroMQ

/// The collector's ROUTER loop on a dedicated OS thread: batches in, acks out, exactly once in Redis.
///
/// Threading: the handle is `Sendable`. The thread owns the ZeroMQ context, the ROUTER socket and
/// a blocking `RedisConnection`; both kinds of blocking call stay on it, off the cooperative pool.
/// A batch is acknowledged only after Redis answered, so a crash before the ack makes the sidecar
/// retry, and the store's markers make the retry count once.
///
/// ```swift
/// let ingest = try await CollectorIngest.start(configuration: settings, fleet: fleet, logger: logger)
/// // ... until shutdown:
/// ingest.requestStop()
/// try await ingest.join()
/// ```
public final class CollectorIngest: Sendable {
    private let thread: ZMQSocketThread

    private init(thread: ZMQSocketThread) {
        self.thread = thread
    }

    /// Starts the thread and returns once the socket is bound; throws if binding (or setup) failed.
    public static func start(
        configuration: CollectorIngestConfiguration,
        fleet: FleetTable,
        logger: Logger
    ) async throws -> CollectorIngest {
        let ready = ReadySignal()
        let thread = ZMQSocketThread.start(name: "tollgate-collector-ingest") { thread in
            let loop: IngestLoop
            do {
                loop = try IngestLoop(configuration: configuration, fleet: fleet, logger: logger)
            } catch {
                ready.resolve(.failure(error))
                throw error
            }
            ready.resolve(.success(()))
            defer { loop.close() }
            try loop.run(until: thread)
        }
        do {
            try await ready.wait()
        } catch {
            try? await thread.join()
            throw error
        }
        return CollectorIngest(thread: thread)
    }

    /// Asks the loop to stop at its next poll (within `pollInterval`); never blocks.
    public func requestStop() {
        self.thread.requestStop()
    }

    /// Waits until the thread has closed its socket, context and connection; rethrows its failure.
    public func join() async throws {
        try await self.thread.join()
    }
}

/// A one-shot result handed from the ingest thread to the task awaiting startup.
// @unchecked Sendable: `result` and `continuation` are only touched under `lock`.
final class ReadySignal: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<Void, any Error>?
    private var continuation: CheckedContinuation<Void, any Error>?

    /// Stores the result (the first one wins) and wakes the waiter, if any.
    func resolve(_ result: Result<Void, any Error>) {
        let waiter: CheckedContinuation<Void, any Error>? = self.lock.withLock {
            guard self.result == nil else { return nil }
            self.result = result
            defer { self.continuation = nil }
            return self.continuation
        }
        waiter?.resume(with: result)
    }

    /// Suspends until `resolve` was called and returns or throws its result.
    func wait() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let done: Result<Void, any Error>? = self.lock.withLock {
                if let result = self.result { return result }
                self.continuation = continuation
                return nil
            }
            if let done { continuation.resume(with: done) }
        }
    }
}
