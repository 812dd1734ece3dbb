import ServiceLifecycle

/// Keeps the quota gate's leases fresh while the sidecar runs, and hands every unused unit back
/// on graceful shutdown (after the proxy drained, so no admitted call is still in flight).
///
/// Threading: a `Sendable` service; it only sleeps and calls the gate.
struct QuotaService: Service {
    let gate: QuotaGate

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                gate.expireLeases(at: gate.now())
            }
        }
        gate.returnAllLeases()
    }
}
