import CZeroMQ

/// What a socket is ready for, or what a poll should wait for.
public struct ZMQPollEvents: OptionSet, Hashable, Sendable {
    /// The raw ZMQ_POLLIN/ZMQ_POLLOUT bits.
    public let rawValue: Int16

    /// Wraps raw poll bits.
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// A whole message can be received without blocking (ZMQ_POLLIN).
    public static let readable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// At least one message can be sent without blocking (ZMQ_POLLOUT).
    public static let writable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLOUT))
    /// A plain file descriptor is in an error state (ZMQ_POLLERR); reported, never waited for.
    public static let error = ZMQPollEvents(rawValue: Int16(ZMQ_POLLERR))
}

/// Waits until one of several sockets (or plain file descriptors) is readable or writable, or a
/// timeout passes (zmq_poll).
///
/// Follows ``ZMQSocket``'s threading contract: use it on the thread that owns its sockets, and
/// never on the cooperative pool, since a poll blocks for up to its timeout.
///
/// ```swift
/// var poller = ZMQPoller()
/// let uplink = poller.register(dealer, for: .readable)
/// let updates = poller.register(sub, for: .readable)
/// let ready = try poller.poll(timeoutMilliseconds: 100)
/// if ready[uplink].contains(.readable) { handle(try dealer.receiveMessage()) }
/// ```
public struct ZMQPoller {
    private enum Item {
        case socket(ZMQSocket)
        case fileDescriptor(Int32)
    }

    private var items: [Item] = []
    private var interests: [ZMQPollEvents] = []

    /// Makes an empty poller.
    public init() {}

    /// Adds `socket`, waiting for `events`; returns its index in ``poll(timeoutMilliseconds:)``'s result.
    @discardableResult
    public mutating func register(_ socket: ZMQSocket, for events: ZMQPollEvents) -> Int {
        self.items.append(.socket(socket))
        self.interests.append(events)
        return self.items.count - 1
    }

    /// Adds a plain file descriptor (a Redis connection's socket, a wake-up pipe), waiting for `events`;
    /// returns its index in ``poll(timeoutMilliseconds:)``'s result. The caller keeps it open while registered.
    @discardableResult
    public mutating func register(fileDescriptor: Int32, for events: ZMQPollEvents) -> Int {
        self.items.append(.fileDescriptor(fileDescriptor))
        self.interests.append(events)
        return self.items.count - 1
    }

    /// How many sockets and descriptors are registered.
    public var count: Int { self.items.count }

    /// Waits up to `timeoutMilliseconds` (-1: forever, 0: just check) for a registered event.
    ///
    /// Returns, per registered socket and in registration order, the events that are ready
    /// (empty for a socket that is not). Fails with ETERM when the context shuts down and with
    /// ENOTSOCK when a registered socket was closed.
    public func poll(timeoutMilliseconds: Int) throws(ZMQError) -> [ZMQPollEvents] {
        // Rebuilt on every poll from the sockets' live handles, so a socket closed since
        // registration fails cleanly rather than handing libzmq a freed pointer.
        var pollItems: [zmq_pollitem_t] = []
        pollItems.reserveCapacity(self.items.count)
        for (item, events) in zip(self.items, self.interests) {
            switch item {
            case .socket(let socket):
                let handle = try socket.liveHandle(for: "zmq_poll")
                pollItems.append(zmq_pollitem_t(socket: handle, fd: 0, events: events.rawValue, revents: 0))
            case .fileDescriptor(let fd):
                pollItems.append(zmq_pollitem_t(socket: nil, fd: fd, events: events.rawValue, revents: 0))
            }
        }
        _ = try LibZMQ.poll(&pollItems, timeoutMilliseconds: timeoutMilliseconds)
        return pollItems.map { ZMQPollEvents(rawValue: $0.revents) }
    }
}

// Holds sockets, which are not thread-safe.
@available(*, unavailable)
extension ZMQPoller: Sendable {}

extension ZMQSocket {
    /// Waits up to `timeoutMilliseconds` (-1: forever) until this socket is ready for `events`; returns those ready.
    public func poll(_ events: ZMQPollEvents, timeoutMilliseconds: Int) throws(ZMQError) -> ZMQPollEvents {
        var poller = ZMQPoller()
        poller.register(self, for: events)
        return try poller.poll(timeoutMilliseconds: timeoutMilliseconds)[0]
    }
}
