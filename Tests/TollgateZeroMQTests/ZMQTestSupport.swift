import Testing
import TollgateZeroMQ

/// The transports every socket test runs over.
enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case tcp, inproc

    var testDescription: String { self.rawValue }
}

/// UTF-8 bytes of `text`, for readable frames.
func bytes(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

/// A frame as text, for readable expectations.
func text(_ frame: [UInt8]) -> String {
    String(decoding: frame, as: UTF8.self)
}

/// Runs `body` with a fresh context on a dedicated thread and returns what it observed.
///
/// ZeroMQ calls block, so they stay off the cooperative pool. Expectations belong in the async
/// test, not in `body`: Swift Testing cannot attribute an issue recorded on a plain thread to the
/// running test, so `body` returns its observations and throws only for unexpected failures.
func onSocketThread<Observed: Sendable>(
    _ name: String = #function,
    _ body: sending @escaping (ZMQContext) throws -> Observed
) async throws -> Observed {
    try await ZMQSocketThread.run(name: name) { _ in
        let context = try ZMQContext()
        // Runs after body's own defers closed its sockets, so terminating does not wait.
        defer { context.close() }
        return try body(context)
    }
}

extension ZMQContext {
    /// A socket that drops unsent messages on close, so a failing test cannot hang in `close()`.
    func makeTestSocket(_ kind: ZMQSocketKind) throws -> ZMQSocket {
        let socket = try self.makeSocket(kind)
        do {
            try socket.setOption(.linger, to: 0)
        } catch {
            socket.close()
            throw error
        }
        return socket
    }
}

extension ZMQSocket {
    /// Binds to a fresh endpoint of `transport` (a free TCP port, a unique inproc name) and returns it.
    func bindToFreeEndpoint(_ transport: Transport) throws -> String {
        switch transport {
        case .tcp:
            try self.bind("tcp://127.0.0.1:*")
            return try self.lastEndpoint
        case .inproc:
            let endpoint = "inproc://test-\(UInt64.random(in: 0 ... .max))"
            try self.bind(endpoint)
            return endpoint
        }
    }

    /// The next message, or nil when none arrives within `timeoutMilliseconds`.
    func receive(within timeoutMilliseconds: Int) throws -> [[UInt8]]? {
        if let message = try self.tryReceiveMessage() {
            return message
        }
        guard try self.poll(.readable, timeoutMilliseconds: timeoutMilliseconds).contains(.readable) else {
            return nil
        }
        return try self.tryReceiveMessage()
    }
}

/// A point in time `seconds` from now, for bounding retry loops.
func deadline(seconds: Int) -> ContinuousClock.Instant {
    .now + .seconds(seconds)
}
