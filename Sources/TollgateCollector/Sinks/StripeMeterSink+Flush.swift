import Logging
import Metrics
import TollgateCore
import TollgateRedis
import TollgateStore

extension StripeMeterSink {
    /// How delivering one range ended.
    enum Delivery {
        /// Stripe has it.
        case accepted
        /// A 4xx other than 429: left pending, tried again after `rejectedHold`.
        case rejected(status: Int, message: String)
        /// Every attempt failed with 429, 5xx or no answer: left pending for a later pass.
        case exhausted(status: String)
        /// The claim went to another owner, or the range was completed meanwhile.
        case lostClaim
        /// The sink is shutting down.
        case cancelled
    }

    /// Sends what `cursor` has to send, one delta at a time, until it is idle (at most 8 deltas a pass).
    func flush(_ cursor: MeterCursorID) async {
        guard let eventName = self.eventName(for: cursor) else { return }
        let billing: KeyBilling
        do {
            billing = try await self.billing(for: cursor.keyID)
        } catch {
            self.redisFailed(cursor, error)
            return
        }
        let includedLimit = billing.overageLimits[cursor.feature]
        // Overage is billed only for a feature whose policy is overage in the key's plan now.
        if cursor.kind == .overage && includedLimit == nil { return }
        guard let customer = billing.customer else {
            Counter(label: SinkMetricName.stripeSkipped, dimensions: [("reason", "no_customer")]).increment()
            self.logger.debug("no Stripe customer for the key: not sent", metadata: ["tollgate.key": "\(cursor.keyID)"])
            return
        }
        for _ in 0..<8 {
            let claim: MeterClaim
            do {
                claim = try await self.claim(cursor, includedLimit: includedLimit)
            } catch {
                self.redisFailed(cursor, error)
                return
            }
            switch claim {
            case .idle:
                self.state.record(cursor, behind: 0, pending: false)
                return
            case .busy(let owner, let until):
                // Another collector is sending it; look again when its claim runs out.
                let wait = max(0, until - self.clock.now().milliseconds)
                self.state.park(cursor, until: .now + .milliseconds(wait + 100))
                self.logger.debug("meter range held by another collector", metadata: ["tollgate.cursor": "\(cursor)", "tollgate.owner": "\(owner)"])
                return
            case .send(let range):
                self.state.record(cursor, behind: range.value, pending: true)
                if range.claims > 1 { Counter(label: SinkMetricName.stripeResends).increment() }
                let event = MeterEvent(eventName: eventName, customerID: customer, value: range.value,
                                       timestamp: range.timestamp, identifier: range.identifier)
                switch await self.deliver(event, cursor: cursor, includedLimit: includedLimit) {
                case .accepted:
                    do {
                        let completed = try await self.redis.withConnection { [cursors] in
                            try cursors.complete(cursor, identifier: range.identifier, on: $0)
                        }
                        Counter(label: SinkMetricName.stripeEvents, dimensions: [("event_name", eventName)]).increment()
                        Counter(label: SinkMetricName.stripeUnits, dimensions: [("event_name", eventName)]).increment(by: Int64(clamping: range.value))
                        self.state.record(cursor, behind: 0, pending: false)
                        if !completed { return }
                    } catch {
                        // Stripe has it; the range stays pending and its resend is de-duplicated.
                        self.redisFailed(cursor, error)
                        return
                    }
                case .rejected(let status, let message):
                    Counter(label: SinkMetricName.stripeFailures, dimensions: [("reason", "rejected")]).increment()
                    self.logger.error("Stripe refused a meter event; the range stays pending", metadata: [
                        "tollgate.cursor": "\(cursor)", "tollgate.status": "\(status)", "tollgate.identifier": "\(range.identifier)",
                        "tollgate.value": "\(range.value)", "error": "\(message)",
                    ])
                    await self.hold(cursor, for: self.rejectedHold)
                    return
                case .exhausted(let status):
                    Counter(label: SinkMetricName.stripeFailures, dimensions: [("reason", "retries_exhausted")]).increment()
                    self.logger.warning("Stripe did not take a meter event; the range stays pending", metadata: [
                        "tollgate.cursor": "\(cursor)", "tollgate.status": "\(status)", "tollgate.identifier": "\(range.identifier)",
                    ])
                    await self.hold(cursor, for: self.retry.maximum)
                    return
                case .lostClaim:
                    self.state.markDirty(cursor)
                    return
                case .cancelled:
                    // Another collector (or this one, restarted) may take it at once.
                    await self.hold(cursor, for: .zero)
                    return
                }
            }
        }
        // Still moving: come back next pass.
        self.state.markDirty(cursor)
    }

    /// POSTs `event` until Stripe answers 2xx or 4xx, or `max_attempts` ran out. Before every
    /// retry the claim is renewed, and the range must still be the pending one.
    func deliver(_ event: MeterEvent, cursor: MeterCursorID, includedLimit: UInt64?) async -> Delivery {
        var attempt = 1
        while true {
            do {
                try await self.pacer.wait()
            } catch {
                return .cancelled
            }
            switch await self.client.send(event) {
            case .accepted:
                return .accepted
            case .rejected(let status, let message):
                return .rejected(status: status, message: message)
            case .retryable(let status, let retryAfter):
                guard !Task.isCancelled else { return .cancelled }
                self.retries.increment(status)
                guard attempt < self.settings.maxAttempts else { return .exhausted(status: status) }
                do {
                    try await Task.sleep(for: self.retry.delay(afterAttempt: attempt, retryAfter: retryAfter))
                } catch {
                    return .cancelled
                }
                attempt += 1
                guard case .send(let range)? = try? await self.claim(cursor, includedLimit: includedLimit),
                      range.identifier == event.identifier
                else {
                    return .lostClaim
                }
            }
        }
    }

    func claim(_ cursor: MeterCursorID, includedLimit: UInt64?) async throws -> MeterClaim {
        let now = self.clock.now()
        return try await self.redis.withConnection { [cursors, owner] in
            try cursors.claim(cursor, owner: owner, includedLimit: includedLimit, at: now, on: $0)
        }
    }

    /// Keeps the pending range but lets anyone (this collector too) claim it after `duration`.
    func hold(_ cursor: MeterCursorID, for duration: Duration) async {
        let until = self.clock.now().milliseconds + duration.components.seconds * 1_000
            + duration.components.attoseconds / 1_000_000_000_000_000
        _ = try? await self.redis.withConnection { [cursors, owner] in
            try cursors.release(cursor, owner: owner, until: until, on: $0)
        }
        self.state.park(cursor, until: .now + duration)
    }

    /// The key's Stripe customer (`customers` by key id, then by key name, then the registry's
    /// `stripe_customer`) and, per feature whose policy is overage, the included limit.
    func billing(for keyID: String) async throws -> KeyBilling {
        if let cached = self.customers.get(keyID) { return cached }
        let entry = try await self.redis.withConnection { [registry] in try registry.lookup(keyID: keyID, on: $0) }
        var billing = KeyBilling(customer: self.settings.customers[keyID])
        if let entry {
            billing.customer = billing.customer ?? self.settings.customers[entry.key.name] ?? entry.key.stripeCustomer
            for (name, feature) in entry.effectivePlan.features {
                if case .metered(let metered) = feature, case .overage = metered.policy {
                    billing.overageLimits[name.rawValue] = metered.limit
                }
            }
        }
        self.customers.set(keyID, billing)
        return billing
    }

    private func redisFailed(_ cursor: MeterCursorID, _ error: any Error) {
        Counter(label: SinkMetricName.stripeFailures, dimensions: [("reason", "redis")]).increment()
        self.logger.warning("stripe sink: Redis failed", metadata: ["tollgate.cursor": "\(cursor)", "error": "\(error)"])
        self.state.park(cursor, until: .now + .seconds(1))
    }
}
