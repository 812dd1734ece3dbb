import Foundation
import TollgateWire

/// Replies computed off the ingest thread (payments await the facilitator), queued for the thread
/// that owns the ROUTER socket to send.
///
/// Threading: safe from any thread (a lock around a small queue and a counter).
final class AsyncReplies: @unchecked Sendable {
    private let lock = NSLock()
    private var queue: [([UInt8], UInt64, Tollgate_V1_Envelope.OneOf_Body)] = []
    private var inFlight = 0

    /// Notes that a reply is being prepared.
    func begin() { lock.withLock { inFlight += 1 } }

    /// Queues a finished reply.
    func push(routingID: [UInt8], correlationID: UInt64, _ body: Tollgate_V1_Envelope.OneOf_Body) {
        lock.withLock {
            inFlight -= 1
            queue.append((routingID, correlationID, body))
        }
    }

    /// Replies still being prepared or waiting to be sent.
    var pending: Int { lock.withLock { inFlight + queue.count } }

    /// Takes every queued reply.
    func take() -> [([UInt8], UInt64, Tollgate_V1_Envelope.OneOf_Body)] {
        lock.withLock {
            defer { queue.removeAll() }
            return queue
        }
    }
}
