import TollgateCore
import TollgateStore
import TollgateWire

extension UsageBatchRecord {
    /// The store's form of a wire batch; field for field, no validation (the store validates).
    init(frame batch: UsageBatchFrame) {
        self.init(
            sidecarID: batch.sidecarID,
            bootEpoch: batch.bootEpoch,
            sequence: batch.sequence,
            aggregates: batch.aggregates.map(UsageAggregateRecord.init(frame:))
        )
    }
}

extension UsageAggregateRecord {
    /// The store's form of a wire aggregate.
    init(frame aggregate: UsageBatchFrame.Aggregate) {
        self.init(
            keyID: aggregate.keyID,
            feature: aggregate.feature,
            periodID: aggregate.periodID,
            counters: UsageCounters(
                calls: aggregate.calls,
                units: aggregate.units,
                statuses: StatusCounts(
                    informational: aggregate.informational, success: aggregate.success, redirection: aggregate.redirection,
                    clientError: aggregate.clientError, serverError: aggregate.serverError
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
