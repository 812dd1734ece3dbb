import Foundation
import Logging
import TollgateZeroMQ

/// Ships usage batches to the collectors and keeps them in the spool until each is acknowledged.
///
/// Threading: thread-safe. The work runs on one dedicated thread that owns the DEALER socket and the
/// spool; this handle only starts it, stops it and reads its status.
///
/// ```swift
/// let recorder = UplinkRecorder()
/// let uplink = try Uplink(configuration: UplinkConfiguration(sidecarID: "s1",
///     endpoints: ["tcp://127.0.0.1:7401"], spoolDirectory: "/var/lib/tollgate/spool"), recorder: recorder)
/// uplink.start()
/// recorder.record(event)
/// try await uplink.stop()   // flushes, waits a bounded time for acks, closes
/// ```
public final class Uplink: Sendable {
    /// The settings it runs with.
    public let configuration: UplinkConfiguration
    /// Where request handlers record usage.
    public let recorder: UplinkRecorder
    private let context: ZMQContext?
    private let metrics: UplinkMetrics
    private let logger: Logger
    private let statusBox: UplinkStatusBox
    private let thread = ThreadSlot()

    /// Creates an uplink; `context` is shared when given, else the uplink makes and closes its own.
    public init(
        configuration: UplinkConfiguration, recorder: UplinkRecorder, context: ZMQContext? = nil,
        metrics: UplinkMetrics = UplinkMetrics(), logger: Logger = Logger(label: "tollgate.uplink")
    ) throws(UplinkError) {
        try configuration.validate()
        self.configuration = configuration
        self.recorder = recorder
        self.context = context
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "tollgate.sidecar"] = "\(configuration.sidecarID)"
        self.logger = logger
        self.statusBox = UplinkStatusBox(UplinkStatus(sidecarID: configuration.sidecarID))
    }

    /// The latest snapshot, for `/healthz`.
    public var status: UplinkStatus { statusBox.current }

    /// Starts the uplink thread: replays the spool, connects, and begins sending. Call it once.
    public func start() {
        let (configuration, recorder, context, metrics, logger, statusBox) =
            (self.configuration, self.recorder, self.context, self.metrics, self.logger, self.statusBox)
        let started = ZMQSocketThread.start(name: "tollgate-uplink") { thread in
            do {
                let owned = context == nil ? try ZMQContext() : nil
                // Runs after the loop closed its socket, so terminating does not wait.
                defer { owned?.close() }
                let loop = try UplinkLoop(
                    configuration: configuration, recorder: recorder, context: context ?? owned!,
                    status: statusBox, metrics: metrics, logger: logger
                )
                try loop.run(thread: thread)
            } catch {
                // Fail closed: with no uplink, usage must not pile up in memory.
                recorder.stop()
                statusBox.update { $0.failure = "\(error)"; $0.isRunning = false }
                logger.critical("uplink failed; refusing usage", metadata: ["tollgate.error": "\(error)"])
                throw error
            }
        }
        precondition(thread.set(started), "Uplink.start() called twice")
    }

    /// Asks the thread to flush, drain acks for at most `drainTimeout`, and stop; never blocks.
    public func requestStop() {
        thread.value?.requestStop()
    }

    /// Waits until the thread has stopped, rethrowing its failure.
    public func join() async throws {
        try await thread.value?.join()
    }

    /// Requests a stop and waits for it.
    public func stop() async throws {
        requestStop()
        try await join()
    }
}

/// Holds the uplink's thread once it has started.
// @unchecked Sendable: `thread` is only touched under `lock`.
private final class ThreadSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var thread: ZMQSocketThread?

    var value: ZMQSocketThread? { lock.withLock { thread } }

    /// Stores `thread` unless one is stored already; false in that case.
    func set(_ new: ZMQSocketThread) -> Bool {
        lock.withLock {
            guard thread == nil else { return false }
            thread = new
            return true
        }
    }
}
