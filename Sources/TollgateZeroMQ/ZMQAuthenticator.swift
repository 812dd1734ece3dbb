/// A ZAP handler (ZeroMQ RFC 27) for one context: admits a CURVE client only when its public key
/// is on the allow list.
///
/// Without a handler, a CURVE server socket accepts any client that knows the server's public key
/// (which is public): the traffic is encrypted, but anyone may send it. With one bound, libzmq asks
/// it about every CURVE handshake on the context's server sockets, and a refused client's
/// connection is closed before a single message of it is read.
///
/// Start it on the context before binding the server sockets, so no handshake happens unasked.
/// Stop it before closing the context.
///
/// Threading: the handler runs on a thread of its own (`ZMQSocketThread`), which owns its REP
/// socket; `decided` is called on that thread. `stop()` may be called from any thread.
///
/// ```swift
/// let context = try ZMQContext()
/// let zap = try ZMQAuthenticator.start(context: context, allowedClientKeys: [sidecarKey]) { admitted, key in
///     print(admitted ? "admitted" : "refused", key)
/// }
/// let router = try context.makeSocket(.router)   // .curveServer, .curveSecretKey, bind...
/// // ...
/// zap.stop()
/// context.close()
/// ```
public final class ZMQAuthenticator: Sendable {
    /// Where libzmq sends ZAP requests: one handler per context may bind it.
    public static let endpoint = "inproc://zeromq.zap.01"

    private let thread: ZMQSocketThread

    private init(thread: ZMQSocketThread) {
        self.thread = thread
    }

    /// Binds the handler on `context` and starts answering; returns once it is bound.
    ///
    /// `decided(admitted, clientKey)` reports each decision with the client's public key in Z85
    /// (or the mechanism's name when it is not CURVE, which is always refused).
    public static func start(
        context: ZMQContext,
        allowedClientKeys: Set<ZMQCurveKey>,
        decided: @escaping @Sendable (Bool, String) -> Void = { _, _ in }
    ) throws -> ZMQAuthenticator {
        let allowed = Set(allowedClientKeys.map(\.bytes))
        // Bound here, so a failure throws to the caller; the thread start hands the socket over
        // (the full memory barrier libzmq asks for when a socket changes threads).
        let socket = try context.makeSocket(.rep)
        do {
            try socket.setOption(.linger, to: 0)
            try socket.bind(Self.endpoint)
        } catch {
            socket.close()
            throw error
        }
        let thread = ZMQSocketThread.start(name: "tollgate-zap") { thread in
            defer { socket.close() }
            while !thread.isStopRequested {
                guard try socket.poll(.readable, timeoutMilliseconds: 100).contains(.readable) else { continue }
                let request = try socket.receiveMessage()
                let (reply, admitted, who) = Self.answer(request, allowed: allowed)
                try socket.send(reply)
                if let who { decided(admitted, who) }
            }
        }
        return ZMQAuthenticator(thread: thread)
    }

    /// Stops answering and closes the handler's socket (waits for its thread).
    public func stop() {
        thread.requestStop()
        try? thread.join()
    }

    /// The reply to one ZAP request: whether it admitted the client, and who asked (nil when the
    /// request was not a ZAP request at all, which gets a 500).
    ///
    /// Request: version "1.0", request id, domain, address, routing id, mechanism, credentials
    /// (CURVE: the client's 32-byte public key). Reply: version, request id, status code, status
    /// text, user id, metadata.
    public static func answer(_ request: [[UInt8]], allowed: Set<[UInt8]>) -> (reply: [[UInt8]], admitted: Bool, who: String?) {
        guard request.count >= 6, request[0] == Array("1.0".utf8) else {
            let id = request.count > 1 ? request[1] : []
            return (reply(id, "500", "not a ZAP 1.0 request"), false, nil)
        }
        let id = request[1]
        let mechanism = String(decoding: request[5], as: UTF8.self)
        guard mechanism == "CURVE", request.count == 7, request[6].count == 32 else {
            return (reply(id, "400", "only CURVE clients are admitted"), false, mechanism)
        }
        let key = request[6]
        let who = (try? Z85.encode(key)) ?? "?"
        guard allowed.contains(key) else {
            return (reply(id, "400", "client key not allowed"), false, who)
        }
        return (reply(id, "200", "OK", userID: who), true, who)
    }

    private static func reply(_ id: [UInt8], _ status: String, _ text: String, userID: String = "") -> [[UInt8]] {
        [Array("1.0".utf8), id, Array(status.utf8), Array(text.utf8), Array(userID.utf8), []]
    }
}
