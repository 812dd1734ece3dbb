import Foundation
import Metrics
import TollgateStore
import TollgateRedis
import TollgateWire
import TollgateX402

/// The pieces a payment step is made of: what the caller already knows of the key, and what a
/// step leaves for the caller to finish on a Redis connection of its own.
extension PaymentCoordinator {
    /// What `prepare` leaves: an answer, or the writes that make one.
    public enum Outcome: Sendable {
        /// The step is over (refused, or nothing to write).
        case answered(Tollgate_V1_PaymentResult)
        /// Redis writes remain; their answer is the step's.
        case finish(Finish)
    }

    /// A step's remaining Redis work and the answer it gives. Run it once.
    public struct Finish: Sendable {
        let phase: Tollgate_V1_PaymentRequest.Phase
        let started: ContinuousClock.Instant
        let work: @Sendable (RedisConnection) throws -> Done
        let failed: @Sendable (any Error) -> Tollgate_V1_PaymentResult

        /// Does the work on `connection` (on the caller's thread; it blocks on Redis) and answers.
        public func run(on connection: RedisConnection) -> Done {
            let done: Done
            do {
                done = try work(connection)
            } catch {
                done = Done(result: failed(error))
            }
            PaymentCoordinator.recordStep(phase, since: started)
            return done
        }

        /// The answer when no connection could be had.
        public func fail(_ error: any Error) -> Tollgate_V1_PaymentResult {
            let result = failed(error)
            PaymentCoordinator.recordStep(phase, since: started)
            return result
        }
    }

    /// A finished step: its answer, and what is left to do once the answer is on its way (the
    /// settlement's audit line, metrics, the credit's publication), which the client need not
    /// wait for. The writes it reports on are already in Redis.
    public struct Done: Sendable {
        /// The step's answer.
        public var result: Tollgate_V1_PaymentResult
        /// Run it after sending `result`.
        public var afterwards: (@Sendable () -> Void)?

        init(result: Tollgate_V1_PaymentResult, afterwards: (@Sendable () -> Void)? = nil) {
            self.result = result
            self.afterwards = afterwards
        }
    }

    /// What `begin` leaves: an outcome now, or one that comes with the facilitator's answer.
    public enum Stage: Sendable {
        /// The step needs no facilitator (or was refused before it).
        case now(Outcome)
        /// The step waits for the facilitator; the caller starts the call.
        case waiting(Waiting)
    }

    /// A step waiting for the facilitator.
    public struct Waiting: Sendable {
        let ask: @Sendable (_ completion: @escaping @Sendable (Outcome) -> Void) -> Void

        /// Calls the facilitator and returns at once. `completion` runs once, on the HTTP client's
        /// event loop, with the step's outcome: its answer, or the Redis writes that make it.
        public func start(_ completion: @escaping @Sendable (Outcome) -> Void) {
            ask(completion)
        }
    }

    /// A step that waits for the facilitator; an answer it ends with is recorded as the step's time.
    func waiting(
        _ phase: Tollgate_V1_PaymentRequest.Phase, _ start: ContinuousClock.Instant,
        _ ask: @escaping @Sendable (_ completion: @escaping @Sendable (Outcome) -> Void) -> Void
    ) -> Stage {
        .waiting(Waiting { completion in
            ask { outcome in
                if case .answered = outcome { PaymentCoordinator.recordStep(phase, since: start) }
                completion(outcome)
            }
        })
    }

    /// A step's last part: Redis work on a connection and the answer.
    func finish(
        _ request: Tollgate_V1_PaymentRequest, _ result: Tollgate_V1_PaymentResult, _ start: ContinuousClock.Instant,
        _ work: @escaping @Sendable (RedisConnection, inout Tollgate_V1_PaymentResult) throws -> Tollgate_V1_PaymentResult
    ) -> Outcome {
        self.finishThen(request, result, start) { connection, result in Done(result: try work(connection, &result)) }
    }

    /// A step's last part, with work for after the answer.
    func finishThen(
        _ request: Tollgate_V1_PaymentRequest, _ result: Tollgate_V1_PaymentResult, _ start: ContinuousClock.Instant,
        _ work: @escaping @Sendable (RedisConnection, inout Tollgate_V1_PaymentResult) throws -> Done
    ) -> Outcome {
        let phase = request.phase
        return .finish(Finish(phase: phase, started: start, work: { connection in
            var answer = result
            return try work(connection, &answer)
        }, failed: { [self] error in self.failure(error, phase, result) }))
    }

    static func recordStep(_ phase: Tollgate_V1_PaymentRequest.Phase, since start: ContinuousClock.Instant) {
        Timer(label: "tollgate_collector_payment_step_seconds", dimensions: [("phase", Self.phaseName(phase))]).recordInterval(since: start)
    }

    static func phaseName(_ phase: Tollgate_V1_PaymentRequest.Phase) -> String {
        switch phase {
        case .verifyAndClaim: "verify_and_claim"
        case .settle: "settle"
        case .release: "release"
        case .lookup: "lookup"
        default: "unknown"
        }
    }

    /// The answer for a step that threw: an x402 reason, or `unexpected_verify_error` when Redis
    /// (or anything else) failed.
    func failure(_ error: any Error, _ phase: Tollgate_V1_PaymentRequest.Phase, _ result: Tollgate_V1_PaymentResult) -> Tollgate_V1_PaymentResult {
        var result = result
        if let error = error as? X402Error { return fail(&result, error.x402Reason, error.message) }
        metrics.failed("unavailable")
        logger.warning("payment step failed", metadata: ["tollgate.phase": "\(phase)", "error": "\(error)"])
        result.success = false
        result.errorReason = "unexpected_verify_error"
        return result
    }
}
