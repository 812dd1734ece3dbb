/// Backoff for retried meter events: exponential from `initial`, capped at `maximum`, each delay
/// scaled by a random factor in 0.5...1 (so collectors retrying together spread out), and never
/// shorter than what Stripe asked for in `Retry-After`.
public struct StripeRetryPolicy: Sendable, Hashable {
    /// The first delay.
    public var initial: Duration
    /// The largest delay (before `Retry-After`, which wins when longer).
    public var maximum: Duration

    /// A policy with the given bounds.
    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = max(initial, maximum)
    }

    /// The delay after failed attempt `attempt` (1-based); `jitter` in 0.5...1.
    public func delay(afterAttempt attempt: Int, retryAfter: Duration?, jitter: Double = Double.random(in: 0.5...1)) -> Duration {
        var base = self.initial
        for _ in 1..<max(1, min(attempt, 40)) where base < self.maximum {
            base = base * 2
        }
        let jittered = min(base, self.maximum) * min(1, max(0.5, jitter))
        guard let retryAfter else { return jittered }
        return max(jittered, retryAfter)
    }
}

/// Spaces requests at most `perSecond` a second across every task that shares it.
///
/// Threading: an actor; `wait()` reserves the next slot and sleeps until it (cancellable).
public actor RequestPacer {
    private let interval: Duration
    private var next = ContinuousClock.now

    /// A pacer for `perSecond` requests a second.
    public init(perSecond: Int) {
        self.interval = .seconds(1) / max(1, perSecond)
    }

    /// Returns when the caller may send; throws `CancellationError` when cancelled while waiting.
    public func wait() async throws {
        let now = ContinuousClock.now
        let slot = max(now, self.next)
        self.next = slot + self.interval
        if slot > now {
            try await Task.sleep(until: slot, clock: .continuous)
        }
    }
}
