import Foundation
import TollgateWire
import TollgateZeroMQ

/// One message a SUB socket received: its topic frame and the decoded update.
struct ReceivedUpdate: Sendable {
    var topic: String
    var update: Tollgate_V1_QuotaUpdate
}

/// A real SUB socket on its own thread that keeps every update it receives, for tests.
///
/// Subscribes to every update topic (`u.`). A PUB socket drops messages for subscriptions it has
/// not heard of yet, so `ready(probing:)` publishes probes until one arrives before a test starts.
final class UpdateSubscriber: Sendable {
    private let thread: ZMQSocketThread
    private let box = UpdateBox()

    init(endpoint: String) {
        let box = self.box
        self.thread = ZMQSocketThread.start(name: "test-subscriber") { thread in
            let context = try ZMQContext()
            defer { context.close() }
            let sub = try context.makeSocket(.sub)
            defer { sub.close() }
            try sub.setOption(.linger, to: 0)
            try sub.subscribe(UpdateTopic.prefix)
            try sub.connect(endpoint)
            let codec = WireCodec()
            while !thread.isStopRequested {
                guard try Self.readable(sub), let frames = try sub.tryReceiveMessage() else { continue }
                guard frames.count == 2, let envelope = try? codec.decode(frames[1]),
                      case .quotaUpdate(let update)? = envelope.body else {
                    box.append(ReceivedUpdate(topic: "undecodable", update: Tollgate_V1_QuotaUpdate()))
                    continue
                }
                box.append(ReceivedUpdate(topic: String(decoding: frames[0], as: UTF8.self), update: update))
            }
        }
    }

    private static func readable(_ sub: ZMQSocket) throws -> Bool {
        do {
            return try sub.poll(.readable, timeoutMilliseconds: 20).contains(.readable)
        } catch where error.code == .eintr {
            return false
        }
    }

    /// Publishes probe updates through `publish` until one arrives (the subscription is live), then forgets them.
    func ready(probing publish: (Tollgate_V1_QuotaUpdate) -> Void, timeout: Duration = .seconds(5)) async throws {
        var probe = Tollgate_V1_QuotaUpdate()
        probe.keyID = "probe"
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            publish(probe)
            if try await self.first(timeout: .milliseconds(50), where: { $0.topic == "u.probe" }) != nil {
                self.box.removeAll()
                return
            }
        }
        throw SubscriberTimeout(what: "the subscription to become live")
    }

    /// The first update so far matching `predicate`, waiting up to `timeout` for it; nil if none came.
    func first(timeout: Duration = .seconds(5), where predicate: (ReceivedUpdate) -> Bool) async throws -> ReceivedUpdate? {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if let match = self.box.all.first(where: predicate) { return match }
            try await Task.sleep(for: .milliseconds(5))
        } while ContinuousClock.now < deadline
        return self.box.all.first(where: predicate)
    }

    /// Everything received so far, in order.
    var received: [ReceivedUpdate] { self.box.all }

    func stop() async {
        self.thread.requestStop()
        try? await self.thread.join()
    }
}

struct SubscriberTimeout: Error {
    var what: String
}

// @unchecked Sendable: `items` is only touched under `lock`.
private final class UpdateBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [ReceivedUpdate] = []
    func append(_ item: ReceivedUpdate) { lock.withLock { items.append(item) } }
    func removeAll() { lock.withLock { items.removeAll() } }
    var all: [ReceivedUpdate] { lock.withLock { items } }
}
