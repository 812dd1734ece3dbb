import Logging
import Metrics
import TollgateConfig
import TollgateCore
import TollgateWire
import TollgateZeroMQ

/// Receives the collectors' pushed quota updates (SUB) and applies them to the key directory and
/// the quota gate: exhausted and credited reach the gate; a plan change or a new key refreshes the
/// key's cached plan and hands its leases back; a revoked key is refused from the next request on.
///
/// Threading: the SUB socket lives on the subscriber's own thread; the directory and the gate are
/// safe from any thread. A stale update (older version than the key's) is dropped by both.
public final class QuotaUpdateSubscriber: Sendable {
    private let thread: ZMQSocketThread

    /// Connects a SUB socket to every endpoint (a CURVE client when `curve` is set), subscribed to
    /// every update topic, and starts its thread.
    public init(
        context: ZMQContext, endpoints: [String], directory: KeyDirectory, gate: QuotaGate,
        version: UpdateVersion = UpdateVersion(), codec: WireCodec = WireCodec(), curve: CurveSettings? = nil,
        log: UpdateLog? = nil, logger: Logger
    ) throws {
        let socket = try context.makeSocket(.sub)
        do {
            try socket.setOption(.linger, to: 0)
            try socket.setOption(.maxMessageSize, to: Int64(codec.maxFrameBytes) + 64)
            try socket.subscribe(UpdateTopic.prefix)
            try socket.secureAsCollectorClient(curve)
            for endpoint in endpoints { try socket.connect(endpoint) }
        } catch {
            socket.close()
            throw error
        }
        let received = Counter(label: "tollgate_sidecar_updates_received_total")
        let dropped = Counter(label: "tollgate_sidecar_updates_dropped_total")
        self.thread = ZMQSocketThread.start(name: "tollgate-updates") { thread in
            defer { socket.close() }
            while !thread.isStopRequested {
                guard (try? socket.poll(.readable, timeoutMilliseconds: 100))?.contains(.readable) == true else { continue }
                while let message = try? socket.tryReceiveMessage() {
                    guard message.count == 2, let envelope = try? codec.decode(message[1]),
                          case .quotaUpdate(let update)? = envelope.body
                    else {
                        dropped.increment()
                        continue
                    }
                    received.increment()
                    let applied = Self.apply(update, directory: directory, gate: gate, logger: logger)
                    log?.record(update, sentAtUnixMs: envelope.sentAtUnixMs, appliedAtUnixNanos: WallClock.now().nanosecondsSinceEpoch, applied: applied)
                    version.raise(to: update.version)
                }
            }
        }
    }

    /// Applies `update`; false when the gate dropped it as stale.
    @discardableResult
    static func apply(_ update: Tollgate_V1_QuotaUpdate, directory: KeyDirectory, gate: QuotaGate, logger: Logger) -> Bool {
        switch update.kind {
        case .keyRevoked:
            directory.revoke(update.keyID, version: update.version)
        case .planChanged, .keyAdded:
            let keys = update.keyID.isEmpty ? directory.keys(onPlan: update.plan) : [update.keyID]
            for keyID in keys {
                Task { await directory.refresh(keyID) }
            }
        default:
            break
        }
        let applied = gate.apply(update, at: gate.now())
        logger.debug("quota update", metadata: [
            "tollgate.kind": "\(update.kind)", "tollgate.key": "\(update.keyID.prefix(12))", "tollgate.version": "\(update.version)",
        ])
        return applied
    }

    /// Refreshes everything cached from updates (after the uplink learnt that some were missed):
    /// every cached key is looked up again in the background and the gate hands back its leases.
    public static func resync(directory: KeyDirectory, gate: QuotaGate) {
        for keyID in directory.cachedKeys() {
            Task { await directory.refresh(keyID) }
        }
        gate.resetAll()
    }

    /// Stops the thread and closes the socket.
    public func stop() {
        thread.requestStop()
        try? thread.join()
    }
}
