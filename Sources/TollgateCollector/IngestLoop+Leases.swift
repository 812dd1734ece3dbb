import Logging
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateWire

extension IngestLoop {
    /// Grants a slice of the key's remaining quota (possibly none) and raises `exhausted` when the
    /// grant took the last unleased unit.
    ///
    /// The budget comes from the key's effective plan in the registry, never from the sidecar. A
    /// request for a period that is over, or not yet begun beyond clock skew, is granted nothing.
    func handleLeaseRequest(_ request: Tollgate_V1_LeaseRequest, from routingID: [UInt8], correlationID: UInt64) {
        do {
            let connection = try self.redis()
            guard let entry = try self.registry.lookup(keyID: request.keyID, on: connection), !entry.revoked,
                  case .metered? = entry.effectivePlan.features[FeatureName(request.feature)]
            else {
                self.metrics.leasesRefused.increment()
                self.replyError(to: routingID, correlationID: correlationID,
                                StoreError(.invalidInput, "no metered feature \(request.feature) for key \(request.keyID.prefix(12))"))
                return
            }
            let grant = try self.grantLease(request, entry: entry, on: connection)
            self.reply(to: routingID, correlationID: correlationID, .leaseGrant(grant))
        } catch {
            self.metrics.leasesUnavailable.increment()
            self.logger.warning("could not grant a lease", metadata: ["tollgate.key": "\(request.keyID.prefix(12))", "error": "\(error)"])
            self.replyError(to: routingID, correlationID: correlationID, error)
        }
    }

    /// Grants what `request` asks of `entry`'s metered feature (nothing when the feature is not
    /// metered, or the period is over); an empty period id means the period containing now.
    /// Raises `exhausted` when the grant took the last unleased unit.
    func grantLease(_ request: Tollgate_V1_LeaseRequest, entry: RegistryEntry, on connection: RedisConnection) throws(StoreError) -> Tollgate_V1_LeaseGrant {
        let now = self.clock.now()
        var grant = Tollgate_V1_LeaseGrant()
        grant.keyID = request.keyID
        grant.feature = request.feature
        grant.periodID = request.periodID
        grant.version = entry.version
        guard case .metered(let feature)? = entry.effectivePlan.features[FeatureName(request.feature)] else { return grant }
        grant.limit = feature.limit
        let requested = request.periodID.isEmpty ? feature.period(containing: now) : try? feature.interval.period(id: request.periodID)
        guard let period = requested, period.end > now, period.start <= now.advanced(byNanoseconds: Self.maxClockSkewNanoseconds) else {
            // A period that ended (or has not begun): nothing to lease; the sidecar rolls over.
            self.metrics.leasesExhausted.increment()
            return grant
        }
        grant.periodID = period.id
        // An optimistic feature admits against figures, never against held units: lease it nothing,
        // or units granted to a first lookup (which asks before it knows the mode) would sit
        // outstanding, unspent, and shrink what every sidecar sees as left until they expire.
        let wanted = feature.quotaMode == .optimistic ? 0 : request.unitsWanted
        let result = try self.leases.grant(LeaseGrantRequest(
            keyID: request.keyID, feature: request.feature, period: period,
            holder: LeaseStore.holder(sidecarID: request.sidecarID, bootEpoch: request.bootEpoch),
            requested: wanted, budget: feature.leaseBudget
        ), at: now, on: connection)
        grant.units = result.units
        grant.leaseID = result.leaseID == 0 ? "" : String(result.leaseID)
        grant.expiresAtUnixMs = result.expiresAt.milliseconds
        grant.remainingUnleased = result.unleased
        grant.used = result.used
        grant.credits = result.credits
        grant.holders = result.holders
        grant.outstanding = result.othersOutstanding
        if result.units == 0, let budget = feature.leaseBudget,
           case let (total, overflow) = budget.addingReportingOverflow(result.credits), !overflow, result.used >= total {
            // Used up (say a limit was lowered below what is used): units others hold could come
            // back, but nothing would be grantable even then, so the sidecar must not wait for them.
            grant.outstanding = 0
        }
        if result.units > 0 {
            self.metrics.leasesGranted.increment()
            self.metrics.leaseUnitsGranted.increment(by: Int(clamping: result.units))
        } else {
            self.metrics.leasesExhausted.increment()
        }
        if result.unleased == 0, wanted > 0, feature.leaseBudget != nil {
            self.raiseExhausted(keyID: request.keyID, feature: request.feature, periodID: period.id, on: connection)
        }
        return grant
    }

    /// Takes back what a sidecar will not use. One-way: nothing is replied, and a lost return only
    /// delays those units until the lease is reclaimed.
    func handleLeaseReturn(_ giveBack: Tollgate_V1_LeaseReturn) {
        do {
            let back = try self.leases.giveBack(
                keyID: giveBack.keyID, feature: giveBack.feature, periodID: giveBack.periodID,
                holder: LeaseStore.holder(sidecarID: giveBack.sidecarID, bootEpoch: giveBack.bootEpoch),
                units: giveBack.unusedUnits, on: self.redis()
            )
            self.metrics.leaseUnitsReturned.increment(by: Int(clamping: back))
        } catch {
            self.logger.debug("could not take back a lease", metadata: ["error": "\(error)"])
        }
    }

    /// Tells the fleet nothing is left to lease for the key, feature and period. Sidecars that hold
    /// units of it but have not spent any lately hand them back, so a sidecar that still has callers
    /// gets them instead of refusing while quota sits idle elsewhere.
    private func raiseExhausted(keyID: String, feature: String, periodID: String, on connection: RedisConnection) {
        guard let updates = self.configuration.updates else { return }
        var update = Tollgate_V1_QuotaUpdate()
        update.kind = .exhausted
        update.keyID = keyID
        update.feature = feature
        update.periodID = periodID
        update.remaining = 0
        // Versions order registry changes; exhaustion does not change the registry, so it carries
        // the current version and sidecars apply it whenever it is not older than what they hold.
        update.version = (try? self.registry.version(on: connection)) ?? 0
        updates.publish(update)
        self.metrics.exhaustedRaised.increment()
    }

    /// How far ahead of the collector a sidecar's clock may run into the next period: 60 s.
    static let maxClockSkewNanoseconds: Int64 = 60_000_000_000
}
