#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Free TCP ports on the loopback interface, for servers that tests start.
public enum FreePort {
    /// A port that was free a moment ago, chosen below the kernel's ephemeral range.
    ///
    /// The kernel's own pick (`bind` to port 0) comes from the ephemeral range, which outgoing
    /// connections also draw their source ports from: a test that connects anywhere could take the
    /// port before the server meant for it binds. Below that range only listeners compete, and the
    /// bind check here sees them.
    ///
    /// Another process can take it before the caller binds it, so servers started on it
    /// should retry with a fresh port if binding fails (as `RedisServer` does).
    ///
    /// Within one test process a port is never handed out twice: a test that connects to its port
    /// before binding it (a collector that starts late) must not meet a server another test
    /// started on the same port the kernel picked again.
    public static func make() throws -> Int {
        let upper = ephemeralLowerBound()
        let lower = max(1_024, upper / 2)
        for _ in 0..<256 {
            let port = Int.random(in: lower..<upper)
            guard handedOut.withLock({ !$0.contains(port) }), try canBind(port) else { continue }
            if handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw TestSupportError("no free port in \(lower)..<\(upper) after 256 tries")
    }

    private static let handedOut = PortSet()

    /// The first port of the kernel's ephemeral range (32768 unless configured otherwise).
    private static func ephemeralLowerBound() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
              let first = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first,
              let value = Int(first), value > 2_048
        else { return 32_768 }
        return value
    }

    private static func canBind(_ port: Int) throws -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return bound == 0
    }
}

/// The ports `FreePort` gave out in this process.
// @unchecked Sendable: the set is only touched under `lock`.
private final class PortSet: @unchecked Sendable {
    private let lock = NSLock()
    private var ports: Set<Int> = []

    func withLock<T>(_ body: (inout Set<Int>) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&ports)
    }
}
