import CZeroMQ

/// A typed socket option, read with ``ZMQSocket/option(_:)`` and written with ``ZMQSocket/setOption(_:to:)``.
///
/// ```swift
/// try socket.setOption(.linger, to: 0)
/// try socket.setOption(.maxMessageSize, to: 64 * 1024)
/// let hwm = try socket.option(.sendHighWaterMark)
/// ```
///
/// Durations are in milliseconds, as libzmq takes them; -1 means "forever" where libzmq allows it.
/// Set options before `bind`/`connect`: most only affect connections made afterwards.
public struct ZMQSocketOption<Value>: Sendable {
    let code: Int32
    /// The C constant's name, such as `"ZMQ_LINGER"`, used in errors.
    public let name: String
    let capacity: Int
    let encode: @Sendable (Value) -> [UInt8]
    let decode: @Sendable ([UInt8]) -> Value

    init(
        _ code: Int32,
        _ name: String,
        capacity: Int,
        encode: @escaping @Sendable (Value) -> [UInt8],
        decode: @escaping @Sendable ([UInt8]) -> Value
    ) {
        self.code = code
        self.name = name
        self.capacity = capacity
        self.encode = encode
        self.decode = decode
    }
}

// libzmq reads `int` and `int64_t` options in the host's byte order.
private func bytes<T: FixedWidthInteger>(of value: T) -> [UInt8] {
    withUnsafeBytes(of: value) { Array($0) }
}

private func integer<T: FixedWidthInteger>(from bytes: [UInt8]) -> T {
    guard bytes.count == MemoryLayout<T>.size else { return 0 }
    return bytes.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
}

extension ZMQSocketOption where Value == Int32 {
    private static func int32(_ code: Int32, _ name: String) -> Self {
        Self(code, name, capacity: 4, encode: { bytes(of: $0) }, decode: { integer(from: $0) })
    }

    /// ZMQ_LINGER: milliseconds that unsent messages keep a closed socket's context from terminating.
    public static var linger: Self { .int32(ZMQ_LINGER, "ZMQ_LINGER") }
    /// ZMQ_SNDHWM: how many outgoing messages queue per peer before sending blocks or drops.
    public static var sendHighWaterMark: Self { .int32(ZMQ_SNDHWM, "ZMQ_SNDHWM") }
    /// ZMQ_RCVHWM: how many incoming messages queue per peer before the peer is pushed back.
    public static var receiveHighWaterMark: Self { .int32(ZMQ_RCVHWM, "ZMQ_RCVHWM") }
    /// ZMQ_RECONNECT_IVL: milliseconds before reconnecting a dropped connection.
    public static var reconnectInterval: Self { .int32(ZMQ_RECONNECT_IVL, "ZMQ_RECONNECT_IVL") }
    /// ZMQ_RECONNECT_IVL_MAX: the cap, in milliseconds, of the doubling reconnect backoff (0: no backoff).
    public static var reconnectIntervalMax: Self { .int32(ZMQ_RECONNECT_IVL_MAX, "ZMQ_RECONNECT_IVL_MAX") }
    /// ZMQ_RCVTIMEO: milliseconds a blocking receive waits before failing with EAGAIN (-1: forever).
    public static var receiveTimeout: Self { .int32(ZMQ_RCVTIMEO, "ZMQ_RCVTIMEO") }
    /// ZMQ_SNDTIMEO: milliseconds a blocking send waits before failing with EAGAIN (-1: forever).
    public static var sendTimeout: Self { .int32(ZMQ_SNDTIMEO, "ZMQ_SNDTIMEO") }
    /// ZMQ_HANDSHAKE_IVL: milliseconds a connection has to complete its (CURVE) handshake.
    public static var handshakeInterval: Self { .int32(ZMQ_HANDSHAKE_IVL, "ZMQ_HANDSHAKE_IVL") }
}

extension ZMQSocketOption where Value == Int64 {
    /// ZMQ_MAXMSGSIZE: the largest inbound message, in bytes; a peer sending more is disconnected (-1: no limit).
    ///
    /// Enforced while decoding the wire format, so it applies to `tcp://` and `ipc://`, not `inproc://`.
    public static var maxMessageSize: Self {
        Self(ZMQ_MAXMSGSIZE, "ZMQ_MAXMSGSIZE", capacity: 8, encode: { bytes(of: $0) }, decode: { integer(from: $0) })
    }
}

extension ZMQSocketOption where Value == Bool {
    private static func flag(_ code: Int32, _ name: String) -> Self {
        Self(code, name, capacity: 4, encode: { bytes(of: Int32($0 ? 1 : 0)) }, decode: { integer(from: $0) as Int32 != 0 })
    }

    /// ZMQ_IMMEDIATE: queue messages only to completed connections, so nothing waits for a peer that is not there.
    public static var immediate: Self { .flag(ZMQ_IMMEDIATE, "ZMQ_IMMEDIATE") }
    /// ZMQ_ROUTER_MANDATORY: a ROUTER fails with EHOSTUNREACH for an unknown routing id instead of dropping the message.
    public static var routerMandatory: Self { .flag(ZMQ_ROUTER_MANDATORY, "ZMQ_ROUTER_MANDATORY") }
    /// ZMQ_CURVE_SERVER: this socket is the CURVE server; it also needs ``curveSecretKey``.
    public static var curveServer: Self { .flag(ZMQ_CURVE_SERVER, "ZMQ_CURVE_SERVER") }
}

extension ZMQSocketOption where Value == [UInt8] {
    /// ZMQ_ROUTING_ID: the identity a ROUTER peer sees as this socket's first frame (1 to 255 bytes, not starting with 0).
    public static var routingID: Self {
        Self(ZMQ_ROUTING_ID, "ZMQ_ROUTING_ID", capacity: 255, encode: { $0 }, decode: { $0 })
    }
}

extension ZMQSocketOption where Value == ZMQCurveKey {
    private static func key(_ code: Int32, _ name: String) -> Self {
        // libzmq returns the 32 binary bytes when asked with a 32-byte buffer.
        Self(code, name, capacity: 32, encode: { $0.bytes }, decode: { ZMQCurveKey(unchecked: $0) })
    }

    /// ZMQ_CURVE_PUBLICKEY: a CURVE client's own long-term public key.
    public static var curvePublicKey: Self { .key(ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY") }
    /// ZMQ_CURVE_SECRETKEY: this socket's own long-term secret key (client or server).
    public static var curveSecretKey: Self { .key(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY") }
    /// ZMQ_CURVE_SERVERKEY: a CURVE client's view of the server's public key; setting it makes the socket a client.
    public static var curveServerKey: Self { .key(ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY") }
}
