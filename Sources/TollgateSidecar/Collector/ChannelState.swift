import Foundation
import TollgateWire
import TollgateZeroMQ

/// The shared half of `CollectorRequestChannel`: an outbox filled by callers and a table of
/// waiting replies, drained and resolved by the channel's thread.
// @unchecked Sendable: every mutable property is guarded by `lock`.
final class ChannelState: @unchecked Sendable {
    /// Called once with the reply or the failure, on the channel's thread (or the caller's, when
    /// the request is refused at once): it must be quick and must not block.
    typealias Reply = @Sendable (Result<Tollgate_V1_Envelope, any Error>) -> Void

    private struct Pending {
        var reply: Reply
        var deadline: ContinuousClock.Instant
    }

    let codec: WireCodec
    let wake: WakeSocket
    private let lock = NSLock()
    private var nextID: UInt64 = 1
    private var outbox: [(frame: [UInt8], deadline: ContinuousClock.Instant)] = []
    private var pending: [UInt64: Pending] = [:]
    private var stopped = false

    init(codec: WireCodec, wake: WakeSocket) {
        self.codec = codec
        self.wake = wake
    }

    func enqueue(_ body: Tollgate_V1_Envelope.OneOf_Body, deadline: ContinuousClock.Instant, reply: @escaping Reply) {
        let accepted: Bool = lock.withLock {
            guard !stopped else { return false }
            let id = nextID
            nextID += 1
            do {
                outbox.append((try codec.encode(body, correlationID: id), deadline))
            } catch {
                reply(.failure(error))
                return true
            }
            pending[id] = Pending(reply: reply, deadline: deadline)
            return true
        }
        guard accepted else {
            reply(.failure(CollectorRequestChannel.RequestError.stopped))
            return
        }
        wake.signal()
    }

    /// Queues `body` without expecting a reply (correlation id 0, which no request uses).
    func enqueueOneWay(_ body: Tollgate_V1_Envelope.OneOf_Body) {
        let accepted: Bool = lock.withLock {
            guard !stopped, let frame = try? codec.encode(body, correlationID: 0) else { return false }
            outbox.append((frame, .now + .seconds(2)))
            return true
        }
        if accepted { wake.signal() }
    }

    /// The thread's loop: send what callers queued, resolve replies, expire what timed out.
    func loop(thread: ZMQSocketThread, dealer: ZMQSocket, wake: ZMQSocket) throws {
        var poller = ZMQPoller()
        let dealerIndex = poller.register(dealer, for: .readable)
        let wakeIndex = poller.register(wake, for: .readable)
        // Frames not yet accepted by the socket: with ZMQ_IMMEDIATE and no collector connected
        // (just started, or reconnecting) a send would block, so they wait here and are retried
        // every few milliseconds until their request's deadline.
        var unsent: [(frame: [UInt8], deadline: ContinuousClock.Instant)] = []
        while !thread.isStopRequested {
            let ready = try poller.poll(timeoutMilliseconds: unsent.isEmpty ? nextTimeoutMs() : 5)
            if ready[wakeIndex].contains(.readable) {
                while try wake.tryReceiveMessage() != nil {}
            }
            unsent += takeOutbox()
            if !unsent.isEmpty {
                let now = ContinuousClock.now
                var index = 0
                while index < unsent.count {
                    if unsent[index].deadline <= now {
                        index += 1
                        continue
                    }
                    guard try dealer.trySend([unsent[index].frame]) else { break }
                    index += 1
                }
                unsent.removeFirst(index)
            }
            if ready[dealerIndex].contains(.readable) {
                while let message = try dealer.tryReceiveMessage() {
                    guard message.count == 1, let envelope = try? codec.decode(message[0]) else { continue }
                    resolve(envelope)
                }
            }
            expire(now: .now)
        }
    }

    func failAll(_ error: CollectorRequestChannel.RequestError) {
        let waiting: [Pending] = lock.withLock {
            stopped = true
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        for entry in waiting { entry.reply(.failure(error)) }
    }

    func takeOutbox() -> [(frame: [UInt8], deadline: ContinuousClock.Instant)] {
        lock.withLock {
            defer { outbox.removeAll(keepingCapacity: true) }
            return outbox
        }
    }

    private func resolve(_ envelope: Tollgate_V1_Envelope) {
        let entry = lock.withLock { pending.removeValue(forKey: envelope.correlationID) }
        entry?.reply(.success(envelope))
    }

    private func expire(now: ContinuousClock.Instant) {
        let expired: [Pending] = lock.withLock {
            let ids = pending.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { pending.removeValue(forKey: $0) }
        }
        for entry in expired { entry.reply(.failure(CollectorRequestChannel.RequestError.timedOut)) }
    }

    /// Sleep until the nearest deadline, or 100 ms to notice a stop request.
    private func nextTimeoutMs() -> Int {
        lock.withLock {
            guard let nearest = pending.values.map(\.deadline).min() else { return 100 }
            let remaining = ContinuousClock.now.duration(to: nearest)
            let ms = remaining.components.seconds * 1_000 + remaining.components.attoseconds / 1_000_000_000_000_000
            return Int(max(0, min(100, ms + 1)))
        }
    }
}
