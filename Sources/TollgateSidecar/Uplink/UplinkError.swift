#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the spool or the uplink failed: a code for metrics and tests, a message, and the context.
public struct UplinkError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, broadly.
    public enum Code: String, Sendable, Hashable {
        /// A file operation failed (`errno` says which).
        case io
        /// The spool reached its size bound and the overflow policy is `refuse`.
        case spoolFull
        /// A setting is out of range.
        case invalidConfiguration
        /// A batch could not be encoded.
        case encoding
    }

    /// The broad kind of failure.
    public var code: Code
    /// A human-readable explanation.
    public var message: String
    /// The file involved, if any.
    public var path: String?
    /// The C errno, if a system call failed.
    public var errno: Int32?

    /// Creates an error.
    public init(_ code: Code, _ message: String, path: String? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.errno = errno
    }

    /// An error for a failed system call, keeping errno and its text.
    static func system(_ operation: String, path: String, errno value: Int32 = lastErrno()) -> UplinkError {
        let text = String(cString: strerror(value))
        return UplinkError(.io, "\(operation) failed: \(text)", path: path, errno: value)
    }

    /// `code: message (path, errno)`.
    public var description: String {
        var text = "\(code.rawValue): \(message)"
        if let path { text += " (\(path))" }
        if let errno { text += " [errno \(errno)]" }
        return text
    }
}

/// The calling thread's errno.
func lastErrno() -> Int32 {
    errno
}
