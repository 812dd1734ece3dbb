import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Process ids of servers that test helpers started and have not yet seen exit.
///
/// A safety net: when the test process exits without cleaning up (a test that never reached
/// its `defer`), an `atexit` handler kills whatever is left, so no server outlives the tests.
/// A crash (signal) bypasses `atexit`; `withRedisServer` and `deinit` cover every other path.
// @unchecked Sendable: `pids` is only touched under `lock`.
final class RunningServers: @unchecked Sendable {
    static let shared: RunningServers = {
        atexit { RunningServers.shared.killAll() }
        return RunningServers()
    }()

    private let lock = NSLock()
    private var pids: Set<pid_t> = []

    func insert(_ pid: pid_t) {
        self.lock.withLock { _ = self.pids.insert(pid) }
    }

    func remove(_ pid: pid_t) {
        self.lock.withLock { _ = self.pids.remove(pid) }
    }

    private func killAll() {
        let pids = self.lock.withLock { self.pids }
        for pid in pids {
            kill(pid, SIGKILL)
        }
    }
}
