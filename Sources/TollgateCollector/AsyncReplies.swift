import Foundation
import TollgateWire

#if canImport(Glibc)
import Glibc
#endif

/// Replies computed off the ingest thread (payments await the facilitator), queued for the thread
/// that owns the ROUTER socket to send; or, for a payment step with Redis writes left, the writes,
/// which that thread runs on its own connection before it replies.
///
/// A queued reply also wakes that thread at once: `push` writes a byte to a pipe whose read end the
/// ingest loop polls beside its socket, so an answer waits for no poll interval.
///
/// Threading: safe from any thread (a lock around a small queue; pipe writes are atomic).
final class AsyncReplies: @unchecked Sendable {
    private let lock = NSLock()
    /// What a queued entry holds: a reply, or a payment step's last writes (whose answer is the reply).
    enum Answer: Sendable {
        case reply(Tollgate_V1_Envelope.OneOf_Body)
        case finish(PaymentCoordinator.Finish)
    }

    private var queue: [([UInt8], UInt64, Answer)] = []
    private var inFlight = 0
    /// The pipe's read end: readable while replies are queued; -1 if the kernel refused a pipe
    /// (the loop then polls briefly).
    let wakeDescriptor: Int32
    private let wakeWriter: Int32

    init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends {
                _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            }
        }
        self.wakeDescriptor = ends[0]
        self.wakeWriter = ends[1]
    }

    deinit {
        if wakeDescriptor >= 0 { close(wakeDescriptor) }
        if wakeWriter >= 0 { close(wakeWriter) }
    }

    /// Notes that a reply is being prepared.
    func begin() { lock.withLock { inFlight += 1 } }

    /// Queues a finished reply and wakes the ingest thread.
    func push(routingID: [UInt8], correlationID: UInt64, _ answer: Answer) {
        lock.withLock {
            inFlight -= 1
            queue.append((routingID, correlationID, answer))
        }
        // A full pipe (EAGAIN) is already readable: the wake-up is not lost.
        var byte: UInt8 = 1
        if wakeWriter >= 0 { _ = write(wakeWriter, &byte, 1) }
    }

    /// Replies still being prepared or waiting to be sent.
    var pending: Int { lock.withLock { inFlight + queue.count } }

    /// Takes every queued reply, and clears the wake-up.
    func take() -> [([UInt8], UInt64, Answer)] {
        if wakeDescriptor >= 0 {
            var drain = [UInt8](repeating: 0, count: 256)
            while read(wakeDescriptor, &drain, drain.count) > 0 {}
        }
        return lock.withLock {
            defer { queue.removeAll() }
            return queue
        }
    }
}
