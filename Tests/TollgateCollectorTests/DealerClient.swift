import Foundation
import TollgateWire
import TollgateZeroMQ

/// What a DEALER saw: the replies that arrived, decoded (or nil for undecodable ones).
struct DealerExchange: Sendable {
    var replies: [Tollgate_V1_Envelope] = []
    var undecodable = 0
}

/// Connects a fresh DEALER to `endpoint` on its own thread, sends `messages` (each a list of frames)
/// in order, and collects replies until `expecting` arrived and `settle` passed without more, or `timeout`.
///
/// Expectations belong in the async test: this only returns what it saw.
func dealerExchange(
    _ endpoint: String,
    send messages: [[[UInt8]]],
    expecting: Int,
    settle: Duration = .milliseconds(100),
    timeout: Duration = .seconds(10)
) async throws -> DealerExchange {
    try await ZMQSocketThread.run(name: "test-dealer") { _ in
        let context = try ZMQContext()
        defer { context.close() }
        let dealer = try context.makeSocket(.dealer)
        defer { dealer.close() }
        try dealer.setOption(.linger, to: 0)
        try dealer.connect(endpoint)
        for message in messages {
            try dealer.send(message)
        }
        let codec = WireCodec()
        var exchange = DealerExchange()
        let deadline = ContinuousClock.now + timeout
        var quietUntil: ContinuousClock.Instant?
        while ContinuousClock.now < deadline {
            if let quietUntil, ContinuousClock.now >= quietUntil { break }
            guard try dealer.poll(.readable, timeoutMilliseconds: 20).contains(.readable),
                  let frames = try dealer.tryReceiveMessage() else { continue }
            if frames.count == 1, let envelope = try? codec.decode(frames[0]) {
                exchange.replies.append(envelope)
            } else {
                exchange.undecodable += 1
            }
            if exchange.replies.count + exchange.undecodable >= expecting {
                quietUntil = ContinuousClock.now + settle
            }
        }
        return exchange
    }
}

/// One framed envelope, ready to send from a DEALER.
func frame(_ body: Tollgate_V1_Envelope.OneOf_Body, correlationID: UInt64 = 0) throws -> [[UInt8]] {
    [try WireCodec().encode(body, correlationID: correlationID)]
}

/// A wire batch of `calls` calls per key, on feature `api_call` in period `d20261123`.
func wireBatch(sidecar: String = "sc-test", epoch: UInt64 = 1, sequence: UInt64, keys: [String], calls: UInt64 = 3,
               period: String = "d20261123") -> Tollgate_V1_UsageBatch {
    var batch = Tollgate_V1_UsageBatch()
    batch.sidecarID = sidecar
    batch.bootEpoch = epoch
    batch.sequence = sequence
    batch.aggregates = keys.map { key in
        var aggregate = Tollgate_V1_UsageAggregate()
        aggregate.keyID = key
        aggregate.feature = "api_call"
        aggregate.periodID = period
        aggregate.calls = calls
        aggregate.units = calls
        aggregate.status.success = calls
        aggregate.requestBytes = 10 * calls
        aggregate.latencySumUs = 500 * calls
        aggregate.latencyMaxUs = 700
        aggregate.extraUnits = ["tokens": 100 * calls]
        return aggregate
    }
    return batch
}
