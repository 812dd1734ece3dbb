import Foundation
import Logging
import Metrics
import TollgateConfig
import TollgateStore
import TollgateWire
import TollgateZeroMQ

/// The shared half of `UpdatePublisher`: the queue callers fill and the publisher thread drains,
/// the wake-up socket, and the metrics.
// @unchecked Sendable: every mutable property is guarded by `lock`. `wake` is a ZeroMQ socket made
// on the publisher thread and then used by callers one at a time under `lock`; the mutex hand-off
// is the full memory barrier libzmq asks for when a socket changes threads.
final class PublisherState: @unchecked Sendable {
    private struct Item {
        var kind: String
        var topic: [UInt8]
        var envelope: [UInt8]
    }

    private let codec: WireCodec
    private let highWaterMark: Int
    private let maxQueued: Int
    private let curve: CurveSettings?
    private let clock = WallClock()
    private let lock = NSLock()
    private var outbox: [Item] = []
    private var wake: ZMQSocket?
    private var context: ZMQContext?
    private var thread: ZMQSocketThread?
    private var stopped = false
    private var endpoint: String?
    private var published: [String: Counter] = [:]
    private var dropped: [String: Counter] = [:]

    init(codec: WireCodec, highWaterMark: Int, maxQueued: Int, curve: CurveSettings?) {
        self.codec = codec
        self.highWaterMark = highWaterMark
        self.maxQueued = maxQueued
        self.curve = curve
    }

    var boundEndpoint: String? { self.lock.withLock { self.endpoint } }

    // MARK: Callers

    func enqueue(_ update: Tollgate_V1_QuotaUpdate) {
        let kind = update.kind.name
        let envelope: [UInt8]
        do {
            envelope = try self.codec.encode(.quotaUpdate(update), sentAtUnixMs: self.clock.now().milliseconds)
        } catch {
            self.drop("encode")
            return
        }
        let item = Item(kind: kind, topic: Array(UpdateTopic.of(update).utf8), envelope: envelope)
        let refused: String? = self.lock.withLock {
            if self.stopped { return "stopped" }
            if self.outbox.count >= self.maxQueued { return "queue_full" }
            self.outbox.append(item)
            _ = try? self.wake?.trySend([[]])
            return nil
        }
        if let refused { self.drop(refused) }
    }

    // MARK: Lifecycle

    func start(bind: String, logger: Logger) async throws {
        let context = try ZMQContext()
        let ready = ReadySignal()
        let highWaterMark = Int32(clamping: self.highWaterMark)
        let curveSettings = self.curve
        let thread = ZMQSocketThread.start(name: "tollgate-publisher") { thread in
            let sockets: PublisherSockets
            var authenticator: ZMQAuthenticator?
            do {
                let curve = try CurveServer(curveSettings)
                // The allow list answers before the socket binds, so no subscriber goes unchecked.
                authenticator = try curve?.startAuthenticator(context: context, socket: "updates", logger: logger)
                sockets = try PublisherSockets(context: context, bind: bind, highWaterMark: highWaterMark, curve: curve)
            } catch {
                authenticator?.stop()
                ready.resolve(.failure(error))
                throw error
            }
            defer {
                sockets.pub.close()
                sockets.wakeReceiver.close()
                authenticator?.stop()
            }
            self.attach(wake: sockets.wakeSender, endpoint: sockets.endpoint)
            ready.resolve(.success(()))
            logger.info("update publisher listening", metadata: ["tollgate.endpoint": "\(sockets.endpoint)"])
            try self.loop(thread: thread, pub: sockets.pub, wake: sockets.wakeReceiver)
        }
        do {
            try await ready.wait()
        } catch {
            try? await thread.join()
            self.closeWake()
            await Self.close(context)
            throw error
        }
        self.lock.withLock {
            self.context = context
            self.thread = thread
        }
    }

    func stop() async {
        let (thread, context): (ZMQSocketThread?, ZMQContext?) = self.lock.withLock {
            self.stopped = true
            _ = try? self.wake?.trySend([[]])
            defer {
                self.thread = nil
                self.context = nil
            }
            return (self.thread, self.context)
        }
        thread?.requestStop()
        try? await thread?.join()
        self.closeWake()
        if let context { await Self.close(context) }
        let left = self.lock.withLock {
            defer { self.outbox.removeAll() }
            return self.outbox.count
        }
        for _ in 0..<left { self.drop("stopped") }
    }

    // MARK: Publisher thread

    private func attach(wake: ZMQSocket, endpoint: String) {
        self.lock.withLock {
            self.wake = wake
            self.endpoint = endpoint
            // Updates queued before start: the first poll finds them.
            _ = try? wake.trySend([[]])
        }
    }

    private func loop(thread: ZMQSocketThread, pub: ZMQSocket, wake: ZMQSocket) throws {
        while !thread.isStopRequested {
            if try Self.waitForWake(wake) {
                while try wake.tryReceiveMessage() != nil {}
            }
            try self.send(self.takeOutbox(), on: pub)
        }
        // Graceful stop: what was queued before `stop()` still goes out.
        try self.send(self.takeOutbox(), on: pub)
    }

    /// Whether the wake socket has a message after at most 100 ms; a signal (EINTR) counts as none.
    private static func waitForWake(_ wake: ZMQSocket) throws(ZMQError) -> Bool {
        do {
            return try wake.poll(.readable, timeoutMilliseconds: 100).contains(.readable)
        } catch where error.code == .eintr {
            return false
        }
    }

    private func takeOutbox() -> [Item] {
        self.lock.withLock {
            defer { self.outbox.removeAll(keepingCapacity: true) }
            return self.outbox
        }
    }

    private func send(_ items: [Item], on pub: ZMQSocket) throws {
        for item in items {
            // A PUB socket drops for a subscriber at its high-water mark instead of blocking.
            if try pub.trySend([item.topic, item.envelope]) {
                self.publishedCounter(item.kind).increment()
            } else {
                self.drop("would_block")
            }
        }
    }

    // MARK: Helpers

    private func closeWake() {
        self.lock.withLock {
            self.wake?.close()
            self.wake = nil
        }
    }

    /// Terminates `context` on a thread of its own: it waits out the PUB socket's linger.
    private static func close(_ context: ZMQContext) async {
        _ = try? await ZMQSocketThread.run(name: "tollgate-publisher-close") { _ in context.close() }
    }

    private func drop(_ reason: String) {
        let counter: Counter = self.lock.withLock {
            if let counter = self.dropped[reason] { return counter }
            let counter = Counter(label: CollectorMetricName.updatesDropped, dimensions: [("reason", reason)])
            self.dropped[reason] = counter
            return counter
        }
        counter.increment()
    }

    private func publishedCounter(_ kind: String) -> Counter {
        self.lock.withLock {
            if let counter = self.published[kind] { return counter }
            let counter = Counter(label: CollectorMetricName.updatesPublished, dimensions: [("kind", kind)])
            self.published[kind] = counter
            return counter
        }
    }
}

/// The publisher thread's sockets, made on that thread: the PUB socket and both ends of the wake-up pair.
private struct PublisherSockets {
    let pub: ZMQSocket
    let wakeReceiver: ZMQSocket
    let wakeSender: ZMQSocket
    let endpoint: String

    /// Makes and binds them; on failure closes what it made and throws.
    init(context: ZMQContext, bind: String, highWaterMark: Int32, curve: CurveServer?) throws {
        let wakeName = "inproc://tollgate-publisher-wake-\(UInt64.random(in: 0...UInt64.max))"
        let wakeReceiver = try context.makeSocket(.pair)
        let pub: ZMQSocket
        do {
            try wakeReceiver.setOption(.linger, to: 0)
            try wakeReceiver.bind(wakeName)
            pub = try context.makeSocket(.pub)
        } catch {
            wakeReceiver.close()
            throw error
        }
        let wakeSender: ZMQSocket
        do {
            // Lets the last updates reach subscribers at shutdown without holding it up for long.
            try pub.setOption(.linger, to: 200)
            try pub.setOption(.sendHighWaterMark, to: highWaterMark)
            try curve?.secure(pub)
            try pub.bind(bind)
            self.endpoint = try pub.lastEndpoint
            wakeSender = try context.makeSocket(.pair)
        } catch {
            pub.close()
            wakeReceiver.close()
            throw error
        }
        do {
            try wakeSender.setOption(.linger, to: 0)
            try wakeSender.connect(wakeName)
        } catch {
            wakeSender.close()
            pub.close()
            wakeReceiver.close()
            throw error
        }
        self.pub = pub
        self.wakeReceiver = wakeReceiver
        self.wakeSender = wakeSender
    }
}
