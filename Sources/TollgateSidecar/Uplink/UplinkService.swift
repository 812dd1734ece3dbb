import ServiceLifecycle

/// Runs an ``Uplink`` as a `ServiceLifecycle.Service`.
///
/// On graceful shutdown or cancellation the uplink flushes the recorder into a final spooled batch,
/// waits up to `drainTimeout` for acks, and closes. Put it before the proxy in the `ServiceGroup`:
/// services stop in reverse order, so the proxy stops recording first.
///
/// ```swift
/// let group = ServiceGroup(services: [UplinkService(uplink: uplink), proxy], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
public struct UplinkService: Service {
    /// The uplink it runs.
    public let uplink: Uplink

    /// Wraps `uplink`, which must not have been started.
    public init(uplink: Uplink) {
        self.uplink = uplink
    }

    /// Starts the uplink and returns once it has stopped (after shutdown, or when it fails).
    public func run() async throws {
        uplink.start()
        let uplink = self.uplink
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await uplink.join()
        } onCancelOrGracefulShutdown: {
            uplink.requestStop()
        }
    }
}
