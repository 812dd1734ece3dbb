import TollgateCore
import TollgateWire

extension PendingAggregate {
    /// The wire form; latency goes from nanoseconds to microseconds as the schema asks.
    var frame: UsageBatchFrame.Aggregate {
        var aggregate = UsageBatchFrame.Aggregate(keyID: delta.key, feature: delta.feature.rawValue, periodID: delta.periodID)
        aggregate.calls = delta.calls
        aggregate.units = delta.units
        aggregate.informational = delta.statuses.informational
        aggregate.success = delta.statuses.success
        aggregate.redirection = delta.statuses.redirection
        aggregate.clientError = delta.statuses.clientError
        aggregate.serverError = delta.statuses.serverError
        aggregate.requestBytes = delta.requestBytes
        aggregate.responseBytes = delta.responseBytes
        aggregate.latencySumUs = delta.latencyTotalNanoseconds / 1_000
        aggregate.latencyMaxUs = delta.latencyMaxNanoseconds / 1_000
        aggregate.extraUnits = extraUnits
        aggregate.leasedUnits = delta.leasedUnits
        return aggregate
    }
}

extension Tollgate_V1_UsageBatch {
    /// Calls summed over the aggregates, for logs and the rejected-calls metric.
    var totalCalls: UInt64 {
        aggregates.reduce(0) { UsageDelta.saturatingAdd($0, $1.calls) }
    }
}
