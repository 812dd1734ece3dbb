import Logging
import Metrics
import TollgateConfig
import TollgateZeroMQ

/// The collector's side of CURVE, for both of its server sockets (ingest ROUTER, updates PUB):
/// the socket options, and the allow list of sidecar public keys, enforced by a ZAP handler on
/// the socket's context.
///
/// Without an allow list, CURVE encrypts but admits any client that knows the collector's public
/// key; the collector logs that at start.
///
/// Threading: `Sendable`; `secure` and `startAuthenticator` run on the thread that owns the
/// socket or context they are given.
struct CurveServer: Sendable {
    let secretKey: ZMQCurveKey
    let allowedClientKeys: Set<ZMQCurveKey>

    /// The CURVE server of `settings`, nil when it has no server secret key (plain TCP).
    init?(_ settings: CurveSettings?) throws {
        guard let settings, let secret = settings.serverSecretKey else { return nil }
        self.secretKey = try ZMQCurveKey(z85: secret)
        self.allowedClientKeys = Set(try settings.allowedClientKeys.map { key throws(ZMQError) in try ZMQCurveKey(z85: key) })
    }

    /// Makes `socket` a CURVE server with the collector's secret key.
    func secure(_ socket: ZMQSocket) throws {
        try socket.setOption(.curveServer, to: true)
        try socket.setOption(.curveSecretKey, to: secretKey)
    }

    /// Starts the allow list's ZAP handler on `context` (before its server socket binds); nil,
    /// with a warning, when there is no list. `socket` names the server socket in metrics and logs.
    func startAuthenticator(context: ZMQContext, socket: String, logger: Logger) throws -> ZMQAuthenticator? {
        guard !allowedClientKeys.isEmpty else {
            logger.warning("CURVE without allowed_client_keys: any client that knows the collector's public key may connect",
                           metadata: ["tollgate.socket": "\(socket)"])
            return nil
        }
        let admitted = Counter(label: CollectorMetricName.curveClients, dimensions: [("socket", socket), ("result", "admitted")])
        let refused = Counter(label: CollectorMetricName.curveClients, dimensions: [("socket", socket), ("result", "refused")])
        return try ZMQAuthenticator.start(context: context, allowedClientKeys: allowedClientKeys) { ok, client in
            if ok {
                admitted.increment()
            } else {
                refused.increment()
                logger.warning("refused a CURVE client not on the allow list", metadata: ["tollgate.socket": "\(socket)", "tollgate.client_key": "\(client)"])
            }
        }
    }
}
