import CZeroMQ

/// Thin 1:1 calls into libzmq, in the manner of swift-system's `Syscalls.swift`.
///
/// Nothing outside this file calls a `zmq_` function. Each call checks the C return value and turns
/// a failure into a `ZMQError` right away, because `zmq_errno()` is thread-local state that the next
/// libzmq call may overwrite. Calls that can be interrupted by a signal retry on `EINTR`, so a
/// process signal handler (SIGTERM for graceful shutdown) never surfaces as a spurious error.
enum LibZMQ {
    typealias Handle = UnsafeMutableRawPointer

    static func failure(_ operation: String, _ detail: String? = nil) -> ZMQError {
        ZMQError(code: ZMQError.Code(rawValue: zmq_errno()), operation: operation, detail: detail)
    }

    static func strerror(_ code: Int32) -> String {
        guard let text = zmq_strerror(code) else { return "unknown error \(code)" }
        return String(cString: text)
    }

    static func version() -> (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }

    static func has(_ capability: String) -> Bool {
        zmq_has(capability) == 1
    }

    // MARK: Context

    static func contextNew() throws(ZMQError) -> Handle {
        guard let context = zmq_ctx_new() else { throw failure("zmq_ctx_new") }
        return context
    }

    static func contextSet(_ context: Handle, _ option: Int32, _ value: Int32, name: String) throws(ZMQError) {
        guard zmq_ctx_set(context, option, value) == 0 else { throw failure("zmq_ctx_set", name) }
    }

    /// Never blocks; makes every blocking call on the context's sockets fail with ETERM.
    static func contextShutdown(_ context: Handle) {
        // Fails only with EFAULT (not a context); the caller owns a live handle.
        _ = zmq_ctx_shutdown(context)
    }

    /// Blocks until every socket of the context is closed (and lingering messages are sent).
    static func contextTerm(_ context: Handle) {
        while zmq_ctx_term(context) != 0, zmq_errno() == EINTR {}
    }

    // MARK: Socket

    static func socket(_ context: Handle, _ type: Int32) throws(ZMQError) -> Handle {
        guard let socket = zmq_socket(context, type) else { throw failure("zmq_socket") }
        return socket
    }

    static func close(_ socket: Handle) {
        // Fails only with ENOTSOCK; the caller owns a live handle and forgets it afterwards.
        _ = zmq_close(socket)
    }

    static func bind(_ socket: Handle, _ endpoint: String) throws(ZMQError) {
        guard zmq_bind(socket, endpoint) == 0 else { throw failure("zmq_bind", endpoint) }
    }

    static func connect(_ socket: Handle, _ endpoint: String) throws(ZMQError) {
        guard zmq_connect(socket, endpoint) == 0 else { throw failure("zmq_connect", endpoint) }
    }

    static func unbind(_ socket: Handle, _ endpoint: String) throws(ZMQError) {
        guard zmq_unbind(socket, endpoint) == 0 else { throw failure("zmq_unbind", endpoint) }
    }

    static func disconnect(_ socket: Handle, _ endpoint: String) throws(ZMQError) {
        guard zmq_disconnect(socket, endpoint) == 0 else { throw failure("zmq_disconnect", endpoint) }
    }

    static func setOption(_ socket: Handle, _ option: Int32, _ value: [UInt8], name: String) throws(ZMQError) {
        let result = value.withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) }
        guard result == 0 else { throw failure("zmq_setsockopt", name) }
    }

    static func getOption(_ socket: Handle, _ option: Int32, capacity: Int, name: String) throws(ZMQError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var size = capacity
        let result = buffer.withUnsafeMutableBytes { zmq_getsockopt(socket, option, $0.baseAddress, &size) }
        guard result == 0 else { throw failure("zmq_getsockopt", name) }
        return Array(buffer.prefix(size))
    }

    /// Sends one frame; libzmq copies the bytes, so the array need not outlive the call.
    static func send(_ socket: Handle, _ frame: [UInt8], flags: Int32) throws(ZMQError) {
        while true {
            let result = frame.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, flags) }
            if result >= 0 { return }
            let error = failure("zmq_send")
            if error.code != .eintr { throw error }
        }
    }

    /// Receives one frame of any size (`zmq_recv` would truncate to a fixed buffer) and whether
    /// more frames of the same message follow.
    static func receive(_ socket: Handle, flags: Int32) throws(ZMQError) -> (frame: [UInt8], more: Bool) {
        var message = zmq_msg_t()
        // A small message lives inside zmq_msg_t itself, so every call must see the same address.
        let outcome: Result<([UInt8], Bool), ZMQError> = withUnsafeMutablePointer(to: &message) { message in
            zmq_msg_init(message)
            defer { zmq_msg_close(message) }
            while zmq_msg_recv(message, socket, flags) < 0 {
                let error = failure("zmq_msg_recv")
                if error.code != .eintr { return .failure(error) }
            }
            let bytes = UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message))
            return .success((Array(bytes), zmq_msg_more(message) != 0))
        }
        return try outcome.get()
    }

    static func poll(_ items: inout [zmq_pollitem_t], timeoutMilliseconds: Int) throws(ZMQError) -> Int {
        let count = Int32(items.count)
        let result = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, count, timeoutMilliseconds) }
        guard result >= 0 else { throw failure("zmq_poll") }
        return Int(result)
    }

    // MARK: CURVE and Z85

    static func curveKeypair() throws(ZMQError) -> (publicKey: String, secretKey: String) {
        // Z85 keys are 40 characters plus the terminating NUL.
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else { throw failure("zmq_curve_keypair") }
        return (string(fromNulTerminated: publicKey), string(fromNulTerminated: secretKey))
    }

    /// Returns nil when the length is not a multiple of 4 (Z85 encodes 4-byte groups).
    static func z85Encode(_ bytes: [UInt8]) -> String? {
        var text = [CChar](repeating: 0, count: bytes.count / 4 * 5 + 1)
        let result = bytes.withUnsafeBufferPointer { zmq_z85_encode(&text, $0.baseAddress, $0.count) }
        guard result != nil else { return nil }
        return string(fromNulTerminated: text)
    }

    /// Returns nil when the length is not a multiple of 5 or a character is outside the alphabet.
    static func z85Decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        // zmq_z85_decode does not reject every invalid character itself, so check the alphabet here.
        guard utf8.count % 5 == 0, utf8.allSatisfy(isZ85Character) else { return nil }
        var bytes = [UInt8](repeating: 0, count: utf8.count / 5 * 4)
        let result = zmq_z85_decode(&bytes, text)
        return result == nil ? nil : bytes
    }

    private static func isZ85Character(_ byte: UInt8) -> Bool {
        z85Alphabet.contains(byte)
    }

    private static let z85Alphabet: Set<UInt8> = Set(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8
    )

    private static func string(fromNulTerminated chars: [CChar]) -> String {
        let bytes = chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
