/// A smoothed estimate of how long a collector takes to acknowledge a batch, as TCP estimates its
/// round-trip time (RFC 6298: SRTT and RTTVAR with gains 1/8 and 1/4).
///
/// Why: under load an ack waits behind every batch queued ahead of it (up to `maxInFlight`), so it
/// can legitimately take far longer than `retryInitial`. Re-sending then only queues duplicates the
/// collector must process too, which delays acks further: a retry storm. The uplink never retries a
/// batch sooner than ``retransmitTimeout`` after sending it.
///
/// Threading: a value owned by the uplink thread.
struct AckLatency {
    private var smoothed: Duration?
    private var variation: Duration = .zero

    /// Adds one sample: the time from a batch's first send to its ack. A retried batch's sample
    /// counts from its first send too, which can only overestimate: it errs towards fewer retries.
    mutating func add(_ sample: Duration) {
        guard let smoothed else {
            self.smoothed = sample
            self.variation = sample / 2
            return
        }
        let deviation = smoothed > sample ? smoothed - sample : sample - smoothed
        self.variation = self.variation * 0.75 + deviation * 0.25
        self.smoothed = smoothed * 0.875 + sample * 0.125
    }

    /// The longest timeout: a collector that stalled once must not slow failover for good.
    static let maxTimeout: Duration = .seconds(30)

    /// SRTT + 4 × RTTVAR, at most ``maxTimeout``: zero until the first sample, so the configured
    /// retry delays rule alone.
    var retransmitTimeout: Duration {
        guard let smoothed else { return .zero }
        return min(smoothed + self.variation * 4, Self.maxTimeout)
    }
}
