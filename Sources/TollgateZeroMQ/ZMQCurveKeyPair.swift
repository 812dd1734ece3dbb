/// A 32-byte CURVE (Curve25519) key, public or secret.
///
/// Keys travel in configuration as 40-character Z85 text; ``init(z85:)`` and ``z85`` convert.
public struct ZMQCurveKey: Hashable, Sendable, CustomStringConvertible {
    /// The key's 32 bytes.
    public let bytes: [UInt8]

    /// Wraps 32 key bytes; fails with EINVAL for any other length.
    public init(bytes: [UInt8]) throws(ZMQError) {
        guard bytes.count == 32 else {
            throw ZMQError(code: .einval, operation: "ZMQCurveKey", detail: "a key has 32 bytes, not \(bytes.count)")
        }
        self.bytes = bytes
    }

    /// Decodes a 40-character Z85 key; fails with EINVAL for anything else.
    public init(z85: String) throws(ZMQError) {
        try self.init(bytes: Z85.decode(z85))
    }

    // For bytes libzmq itself produced.
    init(unchecked bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The key as 40 characters of Z85 text.
    public var z85: String {
        // 32 bytes is a multiple of 4, so encoding cannot fail.
        LibZMQ.z85Encode(self.bytes) ?? ""
    }

    /// The Z85 text; a secret key printed this way is exposed, so log only public keys.
    public var description: String { self.z85 }
}

/// A CURVE public/secret key pair, as one side of a CURVE-secured connection holds it.
///
/// ```swift
/// let server = try ZMQCurveKeyPair.generate()
/// try router.setOption(.curveServer, to: true)
/// try router.setOption(.curveSecretKey, to: server.secretKey)
///
/// let client = try ZMQCurveKeyPair.generate()
/// try dealer.setOption(.curveServerKey, to: server.publicKey)
/// try dealer.setOption(.curvePublicKey, to: client.publicKey)
/// try dealer.setOption(.curveSecretKey, to: client.secretKey)
/// ```
public struct ZMQCurveKeyPair: Hashable, Sendable {
    /// The key given to peers.
    public var publicKey: ZMQCurveKey
    /// The key kept private.
    public var secretKey: ZMQCurveKey

    /// Pairs two keys, for instance read from configuration.
    public init(publicKey: ZMQCurveKey, secretKey: ZMQCurveKey) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Makes a fresh random key pair (zmq_curve_keypair); fails with ENOTSUP without CURVE support.
    public static func generate() throws(ZMQError) -> ZMQCurveKeyPair {
        let keys = try LibZMQ.curveKeypair()
        return ZMQCurveKeyPair(publicKey: try ZMQCurveKey(z85: keys.publicKey), secretKey: try ZMQCurveKey(z85: keys.secretKey))
    }
}
