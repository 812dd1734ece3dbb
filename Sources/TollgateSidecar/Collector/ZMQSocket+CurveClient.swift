import TollgateConfig
import TollgateZeroMQ

extension ZMQSocket {
    /// Makes this socket a CURVE client of the collectors when `curve` is configured: this
    /// sidecar's key pair, and the collectors' public key to check them by. Call before `connect`.
    ///
    /// Every socket a sidecar opens to a collector (uplink, requests, updates) goes through here,
    /// so none of them is left in plain text while the others are encrypted.
    /// Throws `UplinkError.invalidConfiguration` when `curve` is set but lacks this sidecar's keys:
    /// a plain socket could never talk to a CURVE collector, and failing at start says why.
    func secureAsCollectorClient(_ curve: CurveSettings?) throws {
        guard let curve else { return }
        guard let publicKey = curve.clientPublicKey, let secretKey = curve.clientSecretKey else {
            throw UplinkError(.invalidConfiguration, "zeromq.curve needs client_public_key and client_secret_key on a sidecar")
        }
        try self.setOption(.curvePublicKey, to: ZMQCurveKey(z85: publicKey))
        try self.setOption(.curveSecretKey, to: ZMQCurveKey(z85: secretKey))
        try self.setOption(.curveServerKey, to: ZMQCurveKey(z85: curve.serverPublicKey))
    }
}
