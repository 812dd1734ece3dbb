import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one error type of this module: a failed libzmq call, with its `zmq_errno()` code.
///
/// ```swift
/// do {
///     try socket.connect("tcp://collector:5555")
/// } catch {
///     print(error.code.name ?? "?", error.message)  // "EINVAL", "Invalid argument"
/// }
/// ```
public struct ZMQError: Error, Hashable, Sendable {
    /// The `zmq_errno()` value at the failure.
    public var code: Code
    /// The libzmq function that failed, such as `zmq_connect`.
    public var operation: String
    /// What the operation was working on, such as the endpoint or option name.
    public var detail: String?
    /// The `zmq_strerror` text for `code`.
    public var message: String

    /// Creates an error for `code`, looking up its `zmq_strerror` text.
    public init(code: Code, operation: String, detail: String? = nil) {
        self.code = code
        self.operation = operation
        self.detail = detail
        self.message = LibZMQ.strerror(code.rawValue)
    }

    /// True when a non-blocking call would have blocked or a timeout ran out (EAGAIN).
    public var isWouldBlock: Bool { code == .eagain }

    /// True when the context was shut down or terminated (ETERM): close the socket and stop.
    public var isContextTerminated: Bool { code == .eterm }
}

extension ZMQError: CustomStringConvertible {
    /// For example `zmq_connect(nonsense): EINVAL (Invalid argument)`.
    public var description: String {
        let target = detail.map { "(\($0))" } ?? ""
        return "\(operation)\(target): \(code) (\(message))"
    }
}

extension ZMQError {
    /// An errno value as libzmq reports it; compare against the named constants.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The numeric errno value.
        public var rawValue: Int32

        /// Wraps a raw errno value.
        public init(rawValue: Int32) { self.rawValue = rawValue }

        // libzmq numbers its own errors above this base so they never collide with the OS's.
        private static let hausnumero: Int32 = 156_384_712

        /// Resource temporarily unavailable: would block, or a send/receive timeout ran out.
        public static let eagain = Code(rawValue: EAGAIN)
        /// Interrupted by a signal.
        public static let eintr = Code(rawValue: EINTR)
        /// Invalid argument, such as a malformed endpoint or an unknown option.
        public static let einval = Code(rawValue: EINVAL)
        /// Bad address.
        public static let efault = Code(rawValue: EFAULT)
        /// Out of memory.
        public static let enomem = Code(rawValue: ENOMEM)
        /// No such device: for example an inproc endpoint nobody has bound.
        public static let enodev = Code(rawValue: ENODEV)
        /// No such file or entry: for example unbinding an endpoint that was never bound.
        public static let enoent = Code(rawValue: ENOENT)
        /// Too many open files or sockets.
        public static let emfile = Code(rawValue: EMFILE)
        /// Operation not supported by this socket type.
        public static let enotsup = Code(rawValue: ENOTSUP)
        /// The endpoint's transport protocol is unknown or not compiled in.
        public static let eprotonosupport = Code(rawValue: EPROTONOSUPPORT)
        /// The address is already in use.
        public static let eaddrinuse = Code(rawValue: EADDRINUSE)
        /// The address is not local.
        public static let eaddrnotavail = Code(rawValue: EADDRNOTAVAIL)
        /// The peer refused the connection.
        public static let econnrefused = Code(rawValue: ECONNREFUSED)
        /// The message is too long.
        public static let emsgsize = Code(rawValue: EMSGSIZE)
        /// The peer is unknown or gone (ROUTER_MANDATORY with an unknown routing id).
        public static let ehostunreach = Code(rawValue: EHOSTUNREACH)
        /// Not a socket: the socket is closed.
        public static let enotsock = Code(rawValue: ENOTSOCK)
        /// The operation is not valid in the socket's current state (REQ/REP ordering).
        public static let efsm = Code(rawValue: hausnumero + 51)
        /// The protocol is incompatible with the socket type.
        public static let enocompatproto = Code(rawValue: hausnumero + 52)
        /// The context was shut down or terminated.
        public static let eterm = Code(rawValue: hausnumero + 53)
        /// No I/O thread is available.
        public static let emthread = Code(rawValue: hausnumero + 54)

        private static let names: [Code: String] = [
            .eagain: "EAGAIN", .eintr: "EINTR", .einval: "EINVAL", .efault: "EFAULT",
            .enomem: "ENOMEM", .enodev: "ENODEV", .enoent: "ENOENT", .emfile: "EMFILE",
            .enotsup: "ENOTSUP", .eprotonosupport: "EPROTONOSUPPORT", .eaddrinuse: "EADDRINUSE",
            .eaddrnotavail: "EADDRNOTAVAIL", .econnrefused: "ECONNREFUSED", .emsgsize: "EMSGSIZE",
            .ehostunreach: "EHOSTUNREACH", .enotsock: "ENOTSOCK", .efsm: "EFSM",
            .enocompatproto: "ENOCOMPATPROTO", .eterm: "ETERM", .emthread: "EMTHREAD",
        ]

        /// The C constant's name, such as `"ETERM"`, when it is one this module knows.
        public var name: String? { Self.names[self] }

        /// The constant's name, or the number when the name is unknown.
        public var description: String { name ?? "errno \(rawValue)" }
    }
}
