import TollgateCore
import TollgateWire

extension PendingAggregate {
    /// The wire form; latency goes from nanoseconds to microseconds as the schema asks.
    var wire: Tollgate_V1_UsageAggregate {
        var aggregate = Tollgate_V1_UsageAggregate()
        aggregate.keyID = delta.key
        aggregate.feature = delta.feature.rawValue
        aggregate.periodID = delta.periodID
        aggregate.calls = delta.calls
        aggregate.units = delta.units
        var status = Tollgate_V1_StatusCounts()
        status.informational = delta.statuses.informational
        status.success = delta.statuses.success
        status.redirection = delta.statuses.redirection
        status.clientError = delta.statuses.clientError
        status.serverError = delta.statuses.serverError
        aggregate.status = status
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
