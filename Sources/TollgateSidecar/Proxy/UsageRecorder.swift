import TollgateCore

/// Receives one usage event per metered call that went through the proxy.
///
/// Threading: called on the proxy's event loop threads, concurrently from several of them, once per
/// finished call. Implementations must be cheap and must never block or await (append to a
/// per-thread buffer, a lock-free queue, or hand off in batches); a slow recorder slows every call.
public protocol UsageRecorder: Sendable {
    /// Records a finished call; `extraUnits` holds the `Tollgate-Units` entries other than the one
    /// already counted in `event.units` (empty, and unallocated, when the upstream reported none).
    func record(_ event: UsageEvent, extraUnits: [String: UInt64])

    /// As `record(_:extraUnits:)`, with the reset interval the call's plan gives its feature when
    /// the proxy knows it (nil: a feature the plan does not meter), so the recorder need not look
    /// the key up again to file the event under its period.
    func record(_ event: UsageEvent, interval: ResetInterval?, extraUnits: [String: UInt64])
}

extension UsageRecorder {
    /// Ignores the interval.
    public func record(_ event: UsageEvent, interval: ResetInterval?, extraUnits: [String: UInt64]) {
        self.record(event, extraUnits: extraUnits)
    }
}

/// A recorder that drops every event: metering off.
public struct DiscardingUsageRecorder: UsageRecorder {
    /// Creates the recorder.
    public init() {}

    /// Drops the event.
    public func record(_ event: UsageEvent, extraUnits: [String: UInt64]) {}
}
