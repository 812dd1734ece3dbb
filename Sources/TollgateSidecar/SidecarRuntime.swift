import Foundation
import Logging
import ServiceLifecycle
import TollgateConfig
import TollgateCore
import TollgateZeroMQ

/// A sidecar's parts wired together: request channel and key directory, uplink, proxy, admin API.
///
/// The wiring lives here, not in the executable, so tests start the same sidecar in-process.
///
/// ```swift
/// let sidecar = try SidecarRuntime(configuration: config, renderMetrics: { "" }, logger: logger)
/// let group = ServiceGroup(configuration: .init(services: sidecar.services, gracefulShutdownSignals: [.sigterm], logger: logger))
/// try await group.run()
/// sidecar.close()
/// ```
public final class SidecarRuntime: Sendable {
    /// The services in start order; a `ServiceGroup` stops them in reverse (admin, proxy, uplink),
    /// so the proxy stops recording before the uplink flushes its last batch.
    public let services: [ServiceGroupConfiguration.ServiceConfiguration]
    /// The key cache, learnt from the collectors.
    public let directory: KeyDirectory
    /// Where the proxy and the local report API record usage.
    public let recorder: UplinkRecorder
    /// The uplink, for status.
    public let uplink: Uplink
    /// The proxy.
    public let proxy: ProxyServer
    /// The quota gate every proxied call goes through.
    public let gate: QuotaGate
    private let context: ZMQContext
    private let channel: CollectorRequestChannel
    private let subscriber: QuotaUpdateSubscriber

    /// Builds every part from the configuration; nothing listens before the services run.
    public init(
        configuration: TollgateConfiguration, renderMetrics: @escaping @Sendable () -> String, logger: Logger,
        clock: any TollgateClock = SystemClock()
    ) throws {
        let challenges = configuration.x402.map { X402ChallengeRenderer(settings: $0) }
        let settings = configuration.sidecar
        let context = try ZMQContext()
        let channel = try CollectorRequestChannel(
            context: context, endpoints: settings.collectors,
            reconnectIntervalMs: Int32(configuration.zeromq.reconnectIntervalMs),
            reconnectIntervalMaxMs: Int32(configuration.zeromq.reconnectIntervalMaxMs),
            curve: configuration.zeromq.curve
        )
        // One table of keys for the directory and the gate.
        let cache = KeyCache()
        let directory = KeyDirectory(channel: channel, cache: cache)
        // Each event is filed under the period of its key's own plan, which the proxy just resolved.
        let recorder = UplinkRecorder(options: .init()) { [directory] event in
            guard case .known(let key)? = directory.cached(event.key),
                  case .metered(let feature)? = key.effectivePlan?.features[event.feature]
            else { return .day }
            return feature.interval
        }
        var uplinkConfiguration = UplinkConfiguration(sidecar: settings, zeroMQ: configuration.zeromq)
        let updateVersion = UpdateVersion()
        let resync = ResyncTarget()
        uplinkConfiguration.updateVersion = updateVersion
        uplinkConfiguration.onResync = { resync.fire() }
        let uplink = try Uplink(configuration: uplinkConfiguration, recorder: recorder, context: context, logger: logger)
        let sidecarID = settings.id
        let gate = QuotaGate(transport: channel, clock: clock, cache: cache) { [uplink] in (sidecarID, uplink.status.bootEpoch) }
        let updateLog = UpdateLog()
        let subscriber = try QuotaUpdateSubscriber(
            context: context, endpoints: settings.updates, directory: directory, gate: gate, version: updateVersion,
            curve: configuration.zeromq.curve, log: updateLog, logger: logger
        )
        resync.set { QuotaUpdateSubscriber.resync(directory: directory, gate: gate) }
        let proxy = ProxyServer(
            configuration: try ProxyConfiguration(settings: settings),
            resolver: CollectorPrincipalResolver(directory: directory, gate: gate),
            recorder: UplinkUsageRecorder(recorder: recorder),
            gate: gate,
            challenges: challenges,
            payments: configuration.x402.map { x402 in
                PaymentChannel(transport: channel, timeout: .milliseconds(Int64(x402.facilitatorTimeoutMs) * 2 + 2_000),
                               keptResponseLimit: x402.idempotencyMaxResponseBytes) { [uplink] in
                    (sidecarID, uplink.status.bootEpoch)
                }
            },
            logger: logger
        )
        let admin = try SidecarAdminHTTP.makeApplication(
            listen: settings.adminListen, directory: directory, recorder: recorder, uplink: uplink, proxy: proxy, gate: gate,
            updates: updateLog, renderMetrics: renderMetrics, logger: logger
        )
        self.context = context
        self.channel = channel
        self.directory = directory
        self.recorder = recorder
        self.uplink = uplink
        self.proxy = proxy
        self.gate = gate
        self.subscriber = subscriber
        // Stopped in reverse: admin, proxy (drains in-flight calls), quota (hands leases back), uplink.
        self.services = [
            .init(service: UplinkService(uplink: uplink)), .init(service: QuotaService(gate: gate)), .init(service: proxy), .init(service: admin),
        ]
    }

    /// Stops the subscriber and request channel and closes the ZeroMQ context; call after the services ended.
    public func close() {
        subscriber.stop()
        channel.stop()
        context.close()
    }
}

/// The resync action, set once the gate exists (the uplink is built before it).
// @unchecked Sendable: `action` is only touched under `lock`.
final class ResyncTarget: @unchecked Sendable {
    private let lock = NSLock()
    private var action: (@Sendable () -> Void)?

    func set(_ action: @escaping @Sendable () -> Void) { lock.withLock { self.action = action } }

    func fire() { lock.withLock { action }?() }
}

/// Feeds the proxy's finished calls into the uplink's recorder.
struct UplinkUsageRecorder: UsageRecorder {
    let recorder: UplinkRecorder

    func record(_ event: UsageEvent, extraUnits: [String: UInt64]) {
        // `.refused` (spool full) cannot un-serve a finished call; the recorder counts it and the
        // admin /readyz reports the sidecar unready so the fleet routes around it.
        _ = recorder.record(event, extraUnits: extraUnits)
    }

    func record(_ event: UsageEvent, interval: ResetInterval?, extraUnits: [String: UInt64]) {
        if let interval {
            _ = recorder.record(event, extraUnits: extraUnits, interval: interval)
        } else {
            _ = recorder.record(event, extraUnits: extraUnits)
        }
    }
}
