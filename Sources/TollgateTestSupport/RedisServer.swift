import Foundation
import TollgateRedis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `redis-server` on `127.0.0.1` and a free port, in a temp directory of its own, for tests.
///
/// Threading: `Sendable`; its methods block while the server starts or stops (polling in 10 ms
/// steps, bounded), so call them from tests, not from production async code.
/// ```swift
/// try withRedisServer(.init(appendOnly: true)) { server in
///     let connection = try RedisConnection(configuration: server.configuration)
///     defer { connection.close() }
///     try server.restart()  // same port and data directory
/// }
/// ```
// @unchecked Sendable: the mutable state (`process`, `isCleanedUp`) is only touched under `lock`.
public final class RedisServer: @unchecked Sendable {
    /// How to run the server.
    public struct Options: Sendable, Hashable {
        /// Turn on the append-only file (`--appendonly yes`), so a restart keeps every write.
        public var appendOnly: Bool
        /// A password the server requires (`--requirepass`); `configuration` carries it.
        public var password: String?
        /// Also listen on a unix socket in the server's directory (`--unixsocket`).
        public var unixSocket: Bool
        /// More `redis-server` arguments, e.g. `["--maxmemory", "10mb"]`.
        public var extraArguments: [String]

        /// Options with the given settings; the default is a plain server without persistence.
        public init(appendOnly: Bool = false, password: String? = nil, unixSocket: Bool = false, extraArguments: [String] = []) {
            self.appendOnly = appendOnly
            self.password = password
            self.unixSocket = unixSocket
            self.extraArguments = extraArguments
        }
    }

    /// The options the server runs with.
    public let options: Options
    /// The address it listens on: always `127.0.0.1`.
    public let host = "127.0.0.1"
    /// The TCP port; the same across `restart()`.
    public private(set) var port: Int
    /// Its working directory (AOF, log, socket); removed by `cleanUp()`.
    public let directory: URL
    /// The unix socket path, if `options.unixSocket` is set.
    public var unixSocketPath: String? {
        self.options.unixSocket ? self.directory.appendingPathComponent("redis.sock").path : nil
    }
    /// A TCP client configuration for this server, with its password if it has one.
    public var configuration: RedisConfiguration {
        var configuration = RedisConfiguration(host: self.host, port: self.port)
        configuration.password = self.options.password
        configuration.connectTimeout = .milliseconds(500)
        configuration.reconnectBackoff = .milliseconds(20)
        return configuration
    }

    private let executable: URL
    private let lock = NSLock()
    private var process: Process?
    private var isCleanedUp = false

    /// Starts a server and waits until it answers `PING`; throws if it does not within 10 s.
    public init(options: Options = .init()) throws {
        self.options = options
        self.executable = try Self.findExecutable()
        let name = "tg-redis-\(UInt32.random(in: .min ... .max))"
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        self.port = 0
        // Another process may take a free port before redis-server binds it: try fresh ones.
        var lastError: (any Error)?
        for _ in 0..<5 {
            do {
                self.port = try FreePort.make()
                try self.start()
                return
            } catch {
                lastError = error
            }
        }
        self.cleanUp()
        throw lastError!
    }

    deinit {
        self.cleanUp()
    }

    /// Whether the server process is running.
    public var isRunning: Bool {
        self.lock.withLock { self.process?.isRunning ?? false }
    }

    /// The server's process id, while it runs.
    public var processIdentifier: Int32? {
        self.lock.withLock { self.process.flatMap { $0.isRunning ? $0.processIdentifier : nil } }
    }

    /// Stops the server gracefully (`SHUTDOWN`: Redis flushes its AOF and exits) and waits; SIGKILL after 10 s.
    ///
    /// `SHUTDOWN` rather than SIGTERM: children that Foundation's `Process` starts on Linux inherit
    /// a signal mask with SIGTERM blocked, so redis-server never sees a SIGTERM from us.
    public func stop() {
        guard self.isRunning else { return self.waitForExit(grace: .zero) }
        do {
            var configuration = self.configuration
            configuration.reconnectAttempts = 1
            let connection = try RedisConnection(configuration: configuration)
            defer { connection.close() }
            _ = try connection.send("SHUTDOWN")  // on success the server closes the socket: this throws .eof
        } catch {
            // Expected: .eof. Anything else, waiting below ends in SIGKILL.
        }
        self.waitForExit(grace: .seconds(10))
    }

    /// Kills the server at once (SIGKILL), as a crash would, and waits for it to exit.
    public func kill() {
        self.signalAndWait(SIGKILL, grace: .seconds(10))
    }

    /// Stops the server (if running) and starts it again on the same port and directory.
    public func restart() throws {
        self.stop()
        // The old socket can linger briefly; Redis binds with SO_REUSEADDR, so a few tries suffice.
        var lastError: (any Error)?
        for _ in 0..<20 {
            do {
                try self.start()
                return
            } catch {
                lastError = error
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        throw lastError!
    }

    /// Kills the server if it still runs and removes its directory. Idempotent.
    public func cleanUp() {
        self.kill()
        let alreadyDone = self.lock.withLock {
            defer { self.isCleanedUp = true }
            return self.isCleanedUp
        }
        if !alreadyDone {
            try? FileManager.default.removeItem(at: self.directory)
        }
    }

    /// The end of the server's log, for failure messages.
    public func logTail(lines: Int = 20) -> String {
        let log = (try? String(contentsOf: self.logFile, encoding: .utf8)) ?? "(no log)"
        return log.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    private var logFile: URL { self.directory.appendingPathComponent("redis.log") }

    private func arguments() -> [String] {
        var arguments = [
            "--port", String(self.port),
            "--bind", self.host,
            "--dir", self.directory.path,
            "--logfile", self.logFile.path,
            "--daemonize", "no",
            "--save", "",
            "--appendonly", self.options.appendOnly ? "yes" : "no",
        ]
        if let password = self.options.password { arguments += ["--requirepass", password] }
        if let path = self.unixSocketPath { arguments += ["--unixsocket", path, "--unixsocketperm", "700"] }
        return arguments + self.options.extraArguments
    }

    /// Launches the process and waits until it answers `PING`; on failure it leaves nothing running.
    private func start() throws {
        let process = Process()
        process.executableURL = self.executable
        process.arguments = self.arguments()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.lock.withLock { self.process = process }
        RunningServers.shared.insert(process.processIdentifier)
        do {
            try self.waitUntilReady(process)
        } catch {
            self.kill()
            throw error
        }
    }

    private func waitUntilReady(_ process: Process) throws {
        let deadline = ContinuousClock.now + .seconds(10)
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw TestSupportError("redis-server on port \(self.port) exited with status \(process.terminationStatus):\n\(self.logTail())")
            }
            do {
                var configuration = self.configuration
                configuration.reconnectAttempts = 1
                let connection = try RedisConnection(configuration: configuration)
                defer { connection.close() }
                if try connection.send("PING") == .status("PONG") { return }
            } catch {
                lastError = error
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        throw TestSupportError("redis-server on port \(self.port) did not answer PING within 10 s (last error: \(String(describing: lastError))):\n\(self.logTail())")
    }

    private func signalAndWait(_ signal: Int32, grace: Duration) {
        if let process = self.lock.withLock({ self.process }), process.isRunning {
            sendSignal(signal, to: process.processIdentifier)
        }
        self.waitForExit(grace: grace)
    }

    /// Waits up to `grace` for the process to exit, then SIGKILLs it, and forgets it.
    private func waitForExit(grace: Duration) {
        guard let process = self.lock.withLock({ self.process }) else { return }
        if process.isRunning {
            let deadline = ContinuousClock.now + grace
            while process.isRunning && ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 0.005)
            }
            if process.isRunning {
                sendSignal(SIGKILL, to: process.processIdentifier)
                process.waitUntilExit()
            }
        }
        RunningServers.shared.remove(process.processIdentifier)
        self.lock.withLock { self.process = nil }
    }

    private static func findExecutable() throws -> URL {
        let environment = ProcessInfo.processInfo.environment
        let path = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        let candidates = [environment["REDIS_SERVER"]].compactMap { $0 } + path.map { "\($0)/redis-server" } + ["/usr/bin/redis-server"]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestSupportError("redis-server not found on PATH or at /usr/bin/redis-server (apt-get install redis-server)")
        }
        return URL(fileURLWithPath: found)
    }
}

private func sendSignal(_ signal: Int32, to pid: pid_t) {
    // A free function, so `RedisServer.kill()` does not shadow the C call.
    _ = kill(pid, signal)
}
