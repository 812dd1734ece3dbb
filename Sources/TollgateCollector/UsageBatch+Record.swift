import TollgateCore
import TollgateStore
import TollgateWire

extension UsageBatchRecord {
    /// The store's form of a wire batch; field for field, no validation (the store validates).
    init(wire batch: Tollgate_V1_UsageBatch) {
        self.init(
            sidecarID: batch.sidecarID,
            bootEpoch: batch.bootEpoch,
            sequence: batch.sequence,
            aggregates: batch.aggregates.map(UsageAggregateRecord.init(wire:))
        )
    }
}

extension UsageAggregateRecord {
    /// The store's form of a wire aggregate.
    init(wire aggregate: Tollgate_V1_UsageAggregate) {
        let status = aggregate.status
        self.init(
            keyID: aggregate.keyID,
            feature: aggregate.feature,
            periodID: aggregate.periodID,
            counters: UsageCounters(
                calls: aggregate.calls,
                units: aggregate.units,
                statuses: StatusCounts(
                    informational: status.informational, success: status.success, redirection: status.redirection,
                    clientError: status.clientError, serverError: status.serverError
                ),
                requestBytes: aggregate.requestBytes,
                responseBytes: aggregate.responseBytes,
                latencySumMicroseconds: aggregate.latencySumUs,
                latencyMaxMicroseconds: aggregate.latencyMaxUs,
                overageUnits: aggregate.overageUnits,
                overageChargeAtomic: aggregate.overageChargeAtomic,
                extraUnits: aggregate.extraUnits
            ),
            leasedUnits: aggregate.leasedUnits
        )
    }
}
