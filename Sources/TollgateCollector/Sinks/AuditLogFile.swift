#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An append-only file rotated by size: `path` is written; past `maxBytes` it becomes `path.1`,
/// `path.1` becomes `path.2`, and so on up to `path.<files>`, the oldest, which is removed.
///
/// Threading: single-owner (the sink thread); not `Sendable`.
///
/// Each line goes out in one `write(2)` to a file opened with `O_APPEND`, so it reaches the page
/// cache whole before `append` returns: a SIGKILL afterwards loses nothing (a power cut can lose
/// what the kernel had not flushed). A file whose last line was torn (a crash mid-write on another
/// kind of file system) gets a newline before the next line, so every complete line still parses.
final class AuditLogFile {
    let path: String
    let maxBytes: Int
    let files: Int
    private var fd: Int32 = -1
    private var size = 0

    /// A log at `path`; nothing is opened before the first `append`.
    init(path: String, maxBytes: Int, files: Int) {
        self.path = path
        self.maxBytes = maxBytes
        self.files = files
    }

    deinit {
        precondition(self.fd < 0, "AuditLogFile.close() was not called")
    }

    /// Opens (or creates) the file now, so a bad path is an error at start rather than at the first line.
    func open() throws(AuditLogError) {
        guard self.fd < 0 else { return }
        let fd = Glibc.open(self.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw AuditLogError("cannot open \(self.path)", errno: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw AuditLogError("cannot stat \(self.path)", errno: code)
        }
        self.fd = fd
        self.size = Int(info.st_size)
        if self.size > 0 && !self.endsWithNewline(fd) {
            try self.write([UInt8(ascii: "\n")])
        }
    }

    /// Appends `line` (which ends with a newline), rotating first if it would pass `maxBytes`.
    /// Returns whether the file was rotated.
    @discardableResult
    func append(_ line: [UInt8]) throws(AuditLogError) -> Bool {
        try self.open()
        var rotated = false
        if self.size > 0 && self.size + line.count > self.maxBytes {
            try self.rotate()
            rotated = true
        }
        try self.write(line)
        return rotated
    }

    /// Closes the file (it is reopened by the next `append`).
    func close() {
        if self.fd >= 0 { Glibc.close(self.fd) }
        self.fd = -1
    }

    private func write(_ bytes: [UInt8]) throws(AuditLogError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(self.fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                let code = errno
                // A failed or short write may leave a torn line: start over on a fresh open.
                self.close()
                throw AuditLogError("cannot write \(self.path)", errno: code)
            }
            offset += written
        }
        self.size += bytes.count
    }

    private func rotate() throws(AuditLogError) {
        self.close()
        if self.files == 0 {
            unlink(self.path)
        } else {
            unlink("\(self.path).\(self.files)")
            for index in stride(from: self.files - 1, through: 1, by: -1) {
                rename("\(self.path).\(index)", "\(self.path).\(index + 1)")
            }
            guard rename(self.path, "\(self.path).1") == 0 else { throw AuditLogError("cannot rotate \(self.path)", errno: errno) }
        }
        try self.open()
    }

    private func endsWithNewline(_ fd: Int32) -> Bool {
        let reader = Glibc.open(self.path, O_RDONLY | O_CLOEXEC)
        guard reader >= 0 else { return true }
        defer { Glibc.close(reader) }
        var byte: UInt8 = 0
        return pread(reader, &byte, 1, off_t(self.size - 1)) != 1 || byte == UInt8(ascii: "\n")
    }
}

/// Why the audit log could not be opened, written or rotated.
public struct AuditLogError: Error, Sendable, CustomStringConvertible {
    /// What failed.
    public var message: String
    /// The C `errno`.
    public var errno: Int32

    init(_ message: String, errno: Int32) {
        self.message = message
        self.errno = errno
    }

    public var description: String { "\(self.message): \(String(cString: strerror(self.errno))) (errno \(self.errno))" }
}
