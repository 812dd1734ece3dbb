import Foundation
import Logging
import Metrics
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateWire
import TollgateX402

/// Carries out x402 payments for the sidecars, in the order x402.md gives: match the payment to the
/// server's own requirements, `/verify`, claim it fleet-wide in Redis, and, once the sidecar has a
/// good upstream answer, `/settle`, write the ledger, credit what was bought and publish the credit.
///
/// The price always comes from the key's effective plan in the registry (the feature's
/// `payment_required` policy, an overage fallback, or the rate tier's paid refill), never from the
/// client. Nothing is credited unless the facilitator settled: a failed, pending, unreadable or
/// timed-out settlement withholds the content and keeps the claim, so the payment cannot be used
/// again until it expires (it may have moved money).
///
/// Threading: `Sendable`. A step's Redis work runs on the connection its caller gives (`begin`,
/// `Finish.run`: the ingest thread's own) or through the `RedisClient` (`handle`); the facilitator
/// is called without a task, and answers on the HTTP client's event loop. Nothing here touches a
/// ZeroMQ socket.
public final class PaymentCoordinator: Sendable {
    let settings: X402Settings
    private let facilitator: FacilitatorClient
    let redis: RedisClient
    private let registry = KeyRegistry()
    let payments: PaymentStore
    private let updates: (any QuotaUpdateSink)?
    private let clock: any TollgateClock
    let logger: Logger
    let decoder = X402Decoder()
    /// Payments decoded lately, by header (see `decode`).
    let decodedPayments = BoundedMemo<PaymentHeaderKey, DecodedPayment>(capacity: 1_024)
    /// The server's requirements lately asked, by price and route (see `requirements`).
    private let requirementsMemo = BoundedMemo<RequirementsKey, ServerRequirements>(capacity: 1_024)
    let metrics = PaymentMetrics()
    private let supportedBox = SupportedBox()
    private let sinks: SinkFanOut?
    private let collectorID: String

    /// A coordinator paying `settings.payTo` through `facilitator`, keeping claims and the ledger in `redis`.
    public init(
        settings: X402Settings, facilitator: FacilitatorClient, redis: RedisClient, payments: PaymentStore = PaymentStore(),
        updates: (any QuotaUpdateSink)?, clock: any TollgateClock = WallClock(), logger: Logger,
        sinks: SinkFanOut? = nil, collectorID: String = "collector"
    ) {
        self.sinks = sinks
        self.collectorID = collectorID
        self.settings = settings
        self.facilitator = facilitator
        self.redis = redis
        self.payments = payments
        self.updates = updates
        self.clock = clock
        self.logger = logger
    }

    /// Asks the facilitator's `/supported` (at start) and keeps the answer for `/healthz` and metrics.
    public func checkFacilitator() async {
        let result = await facilitator.supported()
        supportedBox.set(result)
        let wanted = "/exact/" + settings.network.caip2
        switch result {
        case .success(let kinds):
            let ok = kinds.contains { $0.hasSuffix(wanted) }
            Gauge(label: "tollgate_collector_facilitator_supported").record(ok ? 1 : 0)
            logger.info("facilitator checked", metadata: ["tollgate.facilitator": "\(facilitator.baseURL)", "tollgate.kinds": "\(kinds)"])
        case .failure(let error):
            Gauge(label: "tollgate_collector_facilitator_supported").record(0)
            logger.warning("facilitator /supported failed", metadata: ["tollgate.facilitator": "\(facilitator.baseURL)", "error": "\(error.text)"])
        }
    }

    /// What `/supported` said at start, for `/healthz`.
    public var facilitatorStatus: [String: String] {
        switch supportedBox.get() {
        case nil: return ["facilitator": facilitator.baseURL, "supported": "unchecked"]
        case .success(let kinds)?:
            let wanted = "/exact/" + settings.network.caip2
            return ["facilitator": facilitator.baseURL, "supported": kinds.contains { $0.hasSuffix(wanted) } ? "yes" : "no: \(kinds.joined(separator: ","))"]
        case .failure(let error)?: return ["facilitator": facilitator.baseURL, "supported": "unreachable: \(error.text)"]
        }
    }

    /// The key's settlements, newest first.
    public func settlements(keyID: String, limit: Int) async throws -> [SettlementRecord] {
        try await redis.withConnection { [payments] in try payments.settlements(keyID: keyID, limit: limit, on: $0) }
    }

    /// Handles one phase of a payment and says how it went (Redis through the `RedisClient`).
    public func handle(_ request: Tollgate_V1_PaymentRequest) async -> Tollgate_V1_PaymentResult {
        switch await self.prepare(request) {
        case .answered(let result):
            return result
        case .finish(let finish):
            do {
                let done = try await self.redis.withConnection { finish.run(on: $0) }
                done.afterwards?()
                return done.result
            } catch {
                return finish.fail(error)
            }
        }
    }

    /// `begin` on a `RedisClient` connection, then the facilitator awaited: the step up to its
    /// last Redis writes, for callers without a connection of their own.
    public func prepare(_ request: Tollgate_V1_PaymentRequest) async -> Outcome {
        let stage: Stage
        do {
            stage = try await self.redis.withConnection { connection in self.begin(request, on: connection) }
        } catch {
            return .answered(self.unavailable(request, error))
        }
        switch stage {
        case .now(let outcome):
            return outcome
        case .waiting(let waiting):
            return await withCheckedContinuation { continuation in waiting.start { continuation.resume(returning: $0) } }
        }
    }

    /// Does one phase of a payment up to the facilitator, on `connection` (on the caller's thread;
    /// it blocks on Redis): decoding, the payment-identifier, the key's entry and matching. A phase
    /// that needs no facilitator ends here (refused, answered, or its writes left as a `Finish`);
    /// else the step waits for the facilitator's answer, which the caller starts (`Waiting`).
    ///
    /// The ingest thread calls it on its own connection, starts the facilitator's call itself and
    /// runs the `Finish` when the answer comes: a step then hops between threads only to reach the
    /// facilitator and come back, with no task in between.
    public func begin(_ request: Tollgate_V1_PaymentRequest, on connection: RedisConnection) -> Stage {
        let start = ContinuousClock.now
        var result = self.base(request)
        let stage: Stage
        do {
            stage = try self.step(request, connection, &result, start)
        } catch {
            stage = .now(.answered(self.failure(error, request.phase, result)))
        }
        if case .now(.answered) = stage { Self.recordStep(request.phase, since: start) }
        return stage
    }

    /// The answer for a step that could not get a Redis connection.
    public func unavailable(_ request: Tollgate_V1_PaymentRequest, _ error: any Error) -> Tollgate_V1_PaymentResult {
        let result = self.failure(error, request.phase, self.base(request))
        Self.recordStep(request.phase, since: .now)
        return result
    }

    private func base(_ request: Tollgate_V1_PaymentRequest) -> Tollgate_V1_PaymentResult {
        var result = Tollgate_V1_PaymentResult()
        result.phase = request.phase
        result.claimID = request.claimID
        result.network = settings.network.caip2
        return result
    }

    private func step(
        _ request: Tollgate_V1_PaymentRequest, _ connection: RedisConnection, _ result: inout Tollgate_V1_PaymentResult,
        _ start: ContinuousClock.Instant
    ) throws -> Stage {
        // The key's lookup goes to Redis first, and is read back once the payment is decoded: the two overlap.
        let pending = request.phase == .lookup ? nil : try registry.startLookup(keyID: request.keyID, on: connection)
        let payment: DecodedPayment
        do {
            payment = try self.decode(request)
        } catch {
            if let pending { _ = try? registry.finishLookup(pending, on: connection) }
            throw error
        }
        let looked = try pending.map { try registry.finishLookup($0, on: connection) }
        result.payer = payment.authorization.from.description
        if let problem = payment.identifierProblem {
            return .now(.answered(self.refuseIdentifier(&result, "invalid_payment_identifier", problem, counted: "invalid")))
        }
        if request.phase == .lookup || request.phase == .verifyAndClaim, let identifier = payment.identifier {
            // Before anything else (the facilitator would refuse a settled payment's resend).
            let state = try self.identifierState(identifier, request, payment, on: connection)
            if let answer = self.answer(state, &result) { return .now(.answered(answer)) }
            if request.phase == .lookup {
                result.success = true
                return .now(.answered(result))
            }
        } else if request.phase == .lookup {
            result.success = true
            return .now(.answered(result))
        }
        guard let entry = looked ?? nil, !entry.revoked
        else { return .now(.answered(fail(&result, "invalid_payload", "unknown or revoked key"))) }
        guard let (price, buys) = Self.price(for: entry.effectivePlan, feature: FeatureName(request.feature)) else {
            return .now(.answered(fail(&result, "invalid_payment_requirements", "no payment is asked for \(request.feature) on plan \(entry.key.plan)")))
        }
        let requirements = try self.requirements(price: price, route: request.route)
        if let paidFor = payment.resourceURL, paidFor != request.route {
            return .now(.answered(fail(&result, "invalid_payment_requirements", "the payment was made for another resource (\(paidFor))")))
        }
        if let mismatch = Self.mismatch(payment, requirements, settings: settings) {
            return .now(.answered(fail(&result, mismatch, "the payment does not match this server's requirements")))
        }
        result.amountAtomic = price.atomicUnits
        switch request.phase {
        case .verifyAndClaim:
            return self.verifyAndClaim(request, payment, requirements, result, start)
        case .settle:
            return self.settle(request, payment, requirements, entry: entry, price: price, buys: buys, result, start)
        case .release:
            return .now(self.finish(request, result, start) { [self] connection, result in
                try self.release(request, payment, on: connection)
                result.success = true
                return result
            })
        case .lookup, .unspecified, .UNRECOGNIZED:
            return .now(.answered(fail(&result, "invalid_payload", "no phase")))
        }
    }

    // MARK: Phases

    private func verifyAndClaim(
        _ request: Tollgate_V1_PaymentRequest, _ payment: DecodedPayment, _ requirements: ServerRequirements,
        _ result: Tollgate_V1_PaymentResult, _ start: ContinuousClock.Instant
    ) -> Stage {
        self.waiting(request.phase, start) { [self] completion in
            let verifyStart = ContinuousClock.now
            facilitator.verify(version: payment.version, payloadJSON: payment.json, requirementsJSON: requirements.json(for: payment.version)) { verification in
                self.metrics.verifyTime.recordInterval(since: verifyStart)
                completion(self.claim(after: verification, request, payment, result, start))
            }
        }
    }

    private func claim(
        after verification: FacilitatorClient.Verification, _ request: Tollgate_V1_PaymentRequest, _ payment: DecodedPayment,
        _ result: Tollgate_V1_PaymentResult, _ start: ContinuousClock.Instant
    ) -> Outcome {
        var result = result
        switch verification {
        case .invalid(let reason):
            return .answered(fail(&result, reason, "the facilitator refused the payment"))
        case .unavailable(let reason):
            return .answered(fail(&result, "unexpected_verify_error", reason))
        case .valid:
            metrics.verified.increment()
        }
        let claimID = newClaimID()
        let identifier = payment.identifier.map { self.identifierClaim($0, request, payment) }
        let validBefore = Timestamp(seconds: Int64(clamping: payment.authorization.validBefore))
        let now = clock.now()
        return self.finish(request, result, start) { [self] connection, result in
            let outcome = try payments.claim(payer: payment.authorization.from.description, nonce: payment.authorization.nonce,
                                             identifier: identifier, keyID: request.keyID, claimID: claimID,
                                             validBefore: validBefore, at: now, on: connection)
            switch outcome {
            case .claimed: break
            case .identifierTaken(let state):
                // Another attempt with this id got there between the lookup and now.
                if let answer = self.answer(state, &result) { return answer }
                return fail(&result, "invalid_exact_evm_nonce_already_used", "this payment was already used")
            case .alreadyUsed:
                return fail(&result, "invalid_exact_evm_nonce_already_used", "this payment was already used")
            }
            result.success = true
            result.claimID = claimID
            return result
        }
    }

    private func settle(
        _ request: Tollgate_V1_PaymentRequest, _ payment: DecodedPayment, _ requirements: ServerRequirements,
        entry: RegistryEntry, price: Money, buys: PaymentGrant, _ result: Tollgate_V1_PaymentResult, _ start: ContinuousClock.Instant
    ) -> Stage {
        self.waiting(request.phase, start) { [self] completion in
            let settleStart = ContinuousClock.now
            facilitator.settle(version: payment.version, payloadJSON: payment.json, requirementsJSON: requirements.json(for: payment.version)) { settlement in
                self.metrics.settleTime.recordInterval(since: settleStart)
                completion(self.record(settlement, request, payment, entry: entry, price: price, buys: buys, result, start))
            }
        }
    }

    private func record(
        _ settlement: FacilitatorClient.Settlement, _ request: Tollgate_V1_PaymentRequest, _ payment: DecodedPayment,
        entry: RegistryEntry, price: Money, buys: PaymentGrant, _ result: Tollgate_V1_PaymentResult, _ start: ContinuousClock.Instant
    ) -> Outcome {
        var result = result
        let payer = payment.authorization.from.description
        switch settlement {
        case .failed(let reason):
            result.paymentResponseHeader = Self.responseHeader(success: false, reason: reason, transaction: "", network: settings.network.caip2, payer: payer)
            guard reason != "settlement_pending" else { return .answered(fail(&result, reason, "settlement failed")) }
            // Refused outright: no money moved, so the claim is given up.
            return self.finish(request, result, start) { [self] connection, result in
                try self.release(request, payment, on: connection)
                return fail(&result, reason, "settlement failed")
            }
        case .unavailable(let reason):
            // It may have settled: keep the claim, serve nothing, credit nothing.
            result.paymentResponseHeader = Self.responseHeader(success: false, reason: "unexpected_settle_error", transaction: "", network: settings.network.caip2, payer: payer)
            return .answered(fail(&result, "unexpected_settle_error", reason))
        case .settled(let transaction, let network, _):
            let now = clock.now()
            let (feature, credited, grant) = Self.credit(buys, feature: request.feature, tierName: entry.effectivePlan.rateTier?.name)
            let periodID = Self.periodID(entry.effectivePlan, feature: FeatureName(feature), at: now)
            let record = SettlementRecord(
                keyID: request.keyID, claimID: request.claimID, payer: payer, amountAtomic: price.atomicUnits,
                asset: settings.asset.description, network: network.isEmpty ? settings.network.caip2 : network, transaction: transaction,
                route: request.route, feature: feature, periodID: periodID, creditedUnits: credited, grant: grant
            )
            let responseHeader = Self.responseHeader(success: true, reason: nil, transaction: transaction, network: record.network, payer: payer)
            // The id and the response it got, in one script: a retry replays it from now on.
            let identifier = payment.identifier.map { id in
                let kept = self.keptResponse(id, request)
                return SettledIdentifier(id: kept.id, paymentResponse: responseHeader, response: kept.response, ttlSeconds: settings.idempotencyTTLSeconds)
            }
            // The paid call's own unit is leased to the sidecar serving it (settled by its usage report).
            let holder = request.bootEpoch > 0 ? LeaseStore.holder(sidecarID: request.sidecarID, bootEpoch: request.bootEpoch) : nil
            let reclaim = now.advanced(byNanoseconds: 60_000_000_000)
            return self.finishThen(request, result, start) { [self] connection, result in
                // The claim marked settled, the id kept, the ledger written and the credit made
                // (each one script), and the registry version read: one round trip.
                let (recorded, extra) = try payments.settle(record, nonce: payment.authorization.nonce, identifier: identifier,
                                                            leaseHolder: holder, leaseReclaimAt: reclaim, at: now,
                                                            alongWith: [KeyRegistry.versionStep], on: connection)
                let version = try KeyRegistry.version(extra[0])
                result.success = true
                result.transaction = transaction
                result.creditedUnits = credited
                result.paymentResponseHeader = responseHeader
                guard recorded else { return Done(result: result) }
                // Recorded and credited in Redis: the rest is told once the sidecar has its answer.
                return Done(result: result) { [self] in
                    metrics.settled.increment()
                    metrics.amount.increment(by: Int(clamping: price.atomicUnits))
                    logger.info("settled", metadata: [
                        "tollgate.audit": "settlement", "tollgate.key": "\(request.keyID)", "tollgate.payer": "\(payer)",
                        "tollgate.amount": "\(price.atomicUnits)", "tollgate.asset": "\(settings.asset)", "tollgate.network": "\(record.network)",
                        "tollgate.tx": "\(transaction)", "tollgate.route": "\(request.route)", "tollgate.grant": "\(grant)",
                        "tollgate.claim": "\(request.claimID)",
                    ])
                    self.publishCredit(keyID: request.keyID, feature: feature, periodID: periodID, buys: buys, credited: credited, version: version)
                    self.sinks?.offer(.settled(SettlementEvent(collectorID: self.collectorID, record: record, recordedAt: now)))
                }
            }
        }
    }

    private func release(_ request: Tollgate_V1_PaymentRequest, _ payment: DecodedPayment, on connection: RedisConnection) throws {
        guard !request.claimID.isEmpty else { return }
        try payments.release(payer: payment.authorization.from.description, nonce: payment.authorization.nonce,
                             paymentIdentifier: payment.identifier, keyID: request.keyID, claimID: request.claimID, on: connection)
    }

    private func publishCredit(keyID: String, feature: String, periodID: String, buys: PaymentGrant, credited: UInt64, version: UInt64) {
        // A single call's one unit is the paid call's own: there is nothing new for the fleet.
        guard let updates, buys != .singleCall else { return }
        var update = Tollgate_V1_QuotaUpdate()
        update.kind = .credited
        update.keyID = keyID
        update.feature = feature
        update.periodID = periodID
        update.creditedUnits = credited
        if case .bucketRefill(let tokens) = buys {
            update.bucketCreditNano = Int64(clamping: tokens.multipliedReportingOverflow(by: 1_000_000_000).partialValue)
        }
        // Not a registry change: it carries the current version, which a sidecar never holds a newer one of.
        update.version = version
        updates.publish(update)
    }

    func fail(_ result: inout Tollgate_V1_PaymentResult, _ reason: String, _ message: String) -> Tollgate_V1_PaymentResult {
        metrics.failed(reason)
        logger.info("payment refused", metadata: ["tollgate.reason": "\(reason)", "tollgate.detail": "\(message)"])
        result.success = false
        result.errorReason = reason
        return result
    }

    private func requirements(price: Money, route: String) throws(X402Error) -> ServerRequirements {
        // Pure in the price and the route (the settings never change): a memo is exact.
        try requirementsMemo.value(for: RequirementsKey(price: price, route: route)) { () throws(X402Error) in
            try self.requirementsAfresh(price: price, route: route)
        }
    }

    private func requirementsAfresh(price: Money, route: String) throws(X402Error) -> ServerRequirements {
        let challenge = try X402Challenge(settings: settings, price: price, resource: X402ResourceInfo(url: route), error: X402Challenge.paymentRequiredReason)
        guard let v2 = challenge.paymentRequired.accepts.first else {
            throw X402Error(.invalidChallenge, "no requirements for this network")
        }
        return ServerRequirements(v2: v2, v1: challenge.paymentRequiredV1.accepts.first)
    }
}
