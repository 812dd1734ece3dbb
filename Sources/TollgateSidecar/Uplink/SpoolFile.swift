#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin POSIX file calls for the spool, each turning a failure into an `UplinkError` with errno.
enum SpoolFile {
    /// Opens `path` for appending, creating it (0644) when missing.
    static func openForAppend(_ path: String) throws(UplinkError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .system("open", path: path) }
        return fd
    }

    /// Writes all of `bytes`, retrying short writes and EINTR.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(UplinkError) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if lastErrno() == EINTR { continue }
                throw .system("write", path: path)
            }
            written += n
        }
    }

    /// Closes `fd`.
    static func closeFile(_ fd: Int32) {
        _ = close(fd)
    }

    /// Forces `fd`'s data to stable storage.
    static func sync(_ fd: Int32, path: String) throws(UplinkError) {
        guard fsync(fd) == 0 else { throw .system("fsync", path: path) }
    }

    /// Cuts `path` to `length` bytes.
    static func truncateFile(_ path: String, to length: Int) throws(UplinkError) {
        guard truncate(path, off_t(length)) == 0 else { throw .system("truncate", path: path) }
    }

    /// The whole file.
    static func readAll(_ path: String) throws(UplinkError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .system("open", path: path) }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if lastErrno() == EINTR { continue }
                throw .system("read", path: path)
            }
            if n == 0 { return result }
            result.append(contentsOf: chunk[0 ..< n])
        }
    }

    /// `length` bytes at `offset`.
    static func readRange(_ path: String, offset: Int, length: Int) throws(UplinkError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .system("open", path: path) }
        defer { close(fd) }
        var result = [UInt8](repeating: 0, count: length)
        var done = 0
        while done < length {
            let n = result.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, length - done, off_t(offset + done)) }
            if n < 0 {
                if lastErrno() == EINTR { continue }
                throw .system("pread", path: path)
            }
            guard n > 0 else { throw UplinkError(.io, "file ended before \(offset + length)", path: path) }
            done += n
        }
        return result
    }

    /// Removes `path`.
    static func removeFile(_ path: String) throws(UplinkError) {
        guard unlink(path) == 0 else { throw .system("unlink", path: path) }
    }

    /// Renames `from` to `to`.
    static func moveFile(_ from: String, to: String) throws(UplinkError) {
        guard rename(from, to) == 0 else { throw .system("rename", path: from) }
    }

    /// Creates `path` and its parents when missing.
    static func makeDirectory(_ path: String) throws(UplinkError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0, lastErrno() != EEXIST {
                throw .system("mkdir", path: prefix)
            }
        }
    }

    /// The names of the entries of `path` (without `.` and `..`).
    static func list(_ path: String) throws(UplinkError) -> [String] {
        guard let dir = opendir(path) else { throw .system("opendir", path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Forces the directory's entries (created and removed files) to stable storage.
    static func syncDirectory(_ path: String) throws(UplinkError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .system("open", path: path) }
        defer { close(fd) }
        try sync(fd, path: path)
    }
}
