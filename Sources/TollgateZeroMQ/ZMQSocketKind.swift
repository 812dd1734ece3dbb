import CZeroMQ

/// A ZeroMQ socket type: the messaging pattern a socket takes part in.
public struct ZMQSocketKind: Hashable, Sendable, CustomStringConvertible {
    let rawValue: Int32
    /// The C constant's name, such as `"ZMQ_DEALER"`.
    public let description: String

    private init(_ rawValue: Int32, _ name: String) {
        self.rawValue = rawValue
        self.description = name
    }

    /// Asynchronous requester: load-balances outgoing messages, fair-queues incoming ones.
    public static let dealer = ZMQSocketKind(ZMQ_DEALER, "ZMQ_DEALER")
    /// Asynchronous replier: prefixes each incoming message with the sender's routing id and
    /// routes each outgoing message by its first frame.
    public static let router = ZMQSocketKind(ZMQ_ROUTER, "ZMQ_ROUTER")
    /// Publisher: sends every message to each subscriber whose subscription prefixes it.
    public static let pub = ZMQSocketKind(ZMQ_PUB, "ZMQ_PUB")
    /// Subscriber: receives the messages matching its subscriptions; cannot send.
    public static let sub = ZMQSocketKind(ZMQ_SUB, "ZMQ_SUB")
    /// Pipeline producer: load-balances messages to pullers; cannot receive.
    public static let push = ZMQSocketKind(ZMQ_PUSH, "ZMQ_PUSH")
    /// Pipeline consumer: fair-queues messages from pushers; cannot send.
    public static let pull = ZMQSocketKind(ZMQ_PULL, "ZMQ_PULL")
    /// Synchronous replier: answers each request in turn (the ZAP handler of `ZMQAuthenticator`).
    public static let rep = ZMQSocketKind(ZMQ_REP, "ZMQ_REP")
    /// Exclusive pair: one peer, both directions; used over inproc to wake a socket thread.
    public static let pair = ZMQSocketKind(ZMQ_PAIR, "ZMQ_PAIR")
}
