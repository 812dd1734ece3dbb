import ServiceLifecycle

/// Keeps the quota gate's leases fresh and its decision counts reported while the sidecar runs,
/// and hands every unused unit back on graceful shutdown (after the proxy drained, so no admitted
/// call is still in flight).
///
/// Threading: a `Sendable` service; it only sleeps and calls the gate.
struct QuotaService: Service {
    let gate: QuotaGate

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var tick = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                gate.flushMetrics()
                tick += 1
                if tick % 10 == 0 { gate.expireLeases(at: gate.now()) }
            }
        }
        gate.flushMetrics()
        gate.returnAllLeases()
    }
}
