import ArgumentParser
import Foundation
import TollgateRedis

#if canImport(Glibc)
import Glibc
#endif

/// CPU time per thread of this process, from `/proc/self/task/*/stat` (Linux), grouped by thread name.
///
/// Threads that end during a run keep the last value sampled, so sample every few milliseconds.
struct ThreadCPU {
    /// The latest CPU seconds seen per thread id, with its name.
    private var latest: [Int: (name: String, seconds: Double)] = [:]
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// Reads every live thread's user + system time; keeps the larger value per thread id.
    mutating func sample() {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return }
        for task in tasks {
            guard let tid = Int(task),
                  let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
            else { continue }
            let name = String(stat[stat.index(after: open)..<close])
            // Fields after the name: state is the 3rd field of the line, utime the 14th, stime the 15th.
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            let seconds = (user + system) / Self.ticksPerSecond
            if seconds >= (self.latest[tid]?.seconds ?? 0) { self.latest[tid] = (name, seconds) }
        }
    }

    /// CPU seconds per thread name.
    var byName: [String: Double] {
        self.latest.values.reduce(into: [:]) { $0[$1.name, default: 0] += $1.seconds }
    }

    /// CPU seconds of the calling thread (CLOCK_THREAD_CPUTIME_ID).
    static func currentThreadSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// `after - before` per name, leaving out threads that did (almost) nothing.
    static func delta(_ before: [String: Double], _ after: [String: Double]) -> [(String, Double)] {
        after.map { ($0.key, $0.value - (before[$0.key] ?? 0)) }.filter { $0.1 >= 0.005 }.sorted { $0.1 > $1.1 }
    }
}

/// Names of this process's threads, through `/proc` (Linux), so the CPU report can tell them apart.
///
/// A new thread starts with its creator's name: naming the creating thread around `Uplink.start()`
/// or `CollectorIngest.start` names the thread it makes (Foundation's `Thread.name` does not reach
/// the kernel here). The ZeroMQ contexts' own threads name themselves `ZMQbg/...`.
enum ThreadName {
    /// The kernel's id of the calling thread.
    static func currentID() -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self"))?.split(separator: "/").last.map(String.init)
    }

    /// The name of thread `id`.
    static func get(_ id: String) -> String? {
        (try? String(contentsOfFile: "/proc/self/task/\(id)/comm", encoding: .utf8))?.trimmingCharacters(in: .newlines)
    }

    /// Renames thread `id` (at most 15 bytes are kept).
    static func set(_ id: String, _ name: String) {
        try? String(name.utf8.prefix(15))?.write(toFile: "/proc/self/task/\(id)/comm", atomically: false, encoding: .utf8)
    }

    /// Runs `body` with the calling thread named `name`, so threads it starts inherit the name.
    ///
    /// The caller's thread is renamed back by id, even if an `await` in `body` resumed elsewhere.
    static func whileNamed<T>(_ name: String, _ body: () async throws -> T) async rethrows -> T {
        guard let id = currentID(), let old = get(id) else { return try await body() }
        set(id, name)
        defer { set(id, old) }
        return try await body()
    }
}

/// Counters read from `INFO`: the Lua calls the collector made and the server's CPU time.
struct RedisStats {
    /// `EVALSHA` calls (one per API key per batch).
    var evalshaCalls: Int64 = 0
    /// Microseconds the server spent inside `EVALSHA` (the scripts themselves).
    var evalshaMicroseconds: Int64 = 0
    /// Server CPU seconds, user + system, all its threads.
    var cpuSeconds = 0.0

    /// Reads the stats over `connection`.
    static func read(_ connection: RedisConnection) throws -> RedisStats {
        var stats = RedisStats()
        let commands = try connection.send("INFO", "commandstats").string ?? ""
        for line in commands.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_evalsha:") {
            for field in line.dropFirst("cmdstat_evalsha:".count).split(separator: ",") {
                let pair = field.split(separator: "=", maxSplits: 1)
                guard pair.count == 2, let value = Int64(pair[1]) else { continue }
                if pair[0] == "calls" { stats.evalshaCalls = value }
                if pair[0] == "usec" { stats.evalshaMicroseconds = value }
            }
        }
        let cpu = try connection.send("INFO", "cpu").string ?? ""
        for line in cpu.split(whereSeparator: \.isNewline) {
            let pair = line.split(separator: ":", maxSplits: 1)
            guard pair.count == 2, pair[0] == "used_cpu_user" || pair[0] == "used_cpu_sys", let value = Double(pair[1]) else { continue }
            stats.cpuSeconds += value
        }
        return stats
    }
}

/// Free TCP ports on the loopback interface.
enum FreePort {
    /// A port that was free a moment ago (the kernel's pick for `127.0.0.1:0`); binding it may still race.
    static func make() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ValidationError("bind(127.0.0.1:0) failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw ValidationError("getsockname() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
