import TollgateCore
import TollgateStore

/// A key id of the right shape (64 hex digits) derived from `n`.
func keyID(_ n: Int) -> String {
    let hex = String(n, radix: 16)
    return String(repeating: "0", count: 64 - hex.count) + hex
}

/// A clock stopped at one time, so counter expiry is predictable.
struct FixedClock: TollgateClock {
    var time: Timestamp
    func now() -> Timestamp { time }
}

/// 2026-11-23T12:00:00Z.
let testNow = Timestamp(seconds: 1_795_435_200)

/// A store whose clock is stopped at `testNow`.
func makeStore() -> UsageStore {
    UsageStore(clock: FixedClock(time: testNow))
}

/// An aggregate with `calls` successful calls of one unit each and some bytes and latency.
func aggregate(_ key: String, feature: String = "api_call", period: String = "d20261123", calls: UInt64, latencyMax: UInt64 = 0) -> UsageAggregateRecord {
    UsageAggregateRecord(keyID: key, feature: feature, periodID: period, counters: UsageCounters(
        calls: calls, units: calls, statuses: StatusCounts(success: calls), requestBytes: 10 * calls,
        responseBytes: 100 * calls, latencySumMicroseconds: 50 * calls, latencyMaxMicroseconds: latencyMax
    ))
}
