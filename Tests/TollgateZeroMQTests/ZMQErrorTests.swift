import Testing
import TollgateZeroMQ

@Suite("ZMQError")
struct ZMQErrorTests {
    @Test("a malformed endpoint fails with EINVAL, the operation, the endpoint and the strerror text")
    func malformedEndpoint() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let socket = try context.makeTestSocket(.dealer)
        defer { socket.close() }

        let error = try #require(throws: ZMQError.self) { try socket.connect("nonsense") }
        #expect(error.code == .einval)
        #expect(error.code.name == "EINVAL")
        #expect(error.operation == "zmq_connect")
        #expect(error.detail == "nonsense")
        #expect(error.message == "Invalid argument")
        #expect(error.description == "zmq_connect(nonsense): EINVAL (Invalid argument)")

        #expect(throws: ZMQError(code: .einval, operation: "zmq_connect", detail: "tcp://127.0.0.1")) {
            try socket.connect("tcp://127.0.0.1")
        }
        let unknownTransport = try #require(throws: ZMQError.self) { try socket.bind("bogus://here") }
        #expect(unknownTransport.code == .eprotonosupport)
    }

    @Test("every operation on a closed socket fails with ENOTSOCK instead of touching freed memory")
    func closedSocket() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let socket = try context.makeTestSocket(.dealer)
        socket.close()
        socket.close()  // Idempotent.

        #expect(socket.isClosed)
        #expect(throws: ZMQError.self) { try socket.connect("inproc://x") }
        #expect(throws: ZMQError.self) { try socket.send([bytes("x")]) }
        #expect(throws: ZMQError.self) { try socket.tryReceiveMessage() }
        #expect(throws: ZMQError.self) { try socket.poll(.readable, timeoutMilliseconds: 0) }
        let error = try #require(throws: ZMQError.self) { try socket.setOption(.linger, to: 0) }
        #expect(error.code == .enotsock)
        #expect(error.code.name == "ENOTSOCK")
    }

    @Test("a shut-down context refuses new sockets and fails calls on old ones with ETERM")
    func shutDownContext() throws {
        let context = try ZMQContext()
        let socket = try context.makeTestSocket(.dealer)
        context.shutdown()
        context.shutdown()  // Idempotent.
        #expect(context.isShutDown)

        let refused = try #require(throws: ZMQError.self) { try context.makeSocket(.router) }
        #expect(refused.code == .eterm)
        #expect(refused.isContextTerminated)
        let interrupted = try #require(throws: ZMQError.self) { try socket.tryReceiveMessage() }
        #expect(interrupted.code == .eterm)
        #expect(interrupted.code.name == "ETERM")

        socket.close()
        context.close()
        context.close()  // Idempotent.
        #expect(throws: ZMQError(code: .eterm, operation: "zmq_socket", detail: "context is shut down")) {
            try context.makeSocket(.pub)
        }
    }

    @Test("socket types reject operations they do not support")
    func unsupportedOperations() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let sub = try context.makeTestSocket(.sub)
        defer { sub.close() }
        let sendOnSub = try #require(throws: ZMQError.self) { try sub.send([bytes("x")]) }
        #expect(sendOnSub.code == .enotsup)

        let router = try context.makeTestSocket(.router)
        defer { router.close() }
        try router.setOption(.routerMandatory, to: true)
        let unknownPeer = try #require(throws: ZMQError.self) { try router.send([bytes("nobody"), bytes("x")]) }
        #expect(unknownPeer.code == .ehostunreach)
        #expect(unknownPeer.code.name == "EHOSTUNREACH")

        let emptyID = try #require(throws: ZMQError.self) { try sub.setOption(.routingID, to: []) }
        #expect(emptyID.code == .einval)
    }

    @Test("non-blocking calls report would-block as nil or false, not as an error")
    func wouldBlock() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let dealer = try context.makeTestSocket(.dealer)
        defer { dealer.close() }
        #expect(try dealer.tryReceiveMessage() == nil)
        // No peer yet, so there is no pipe to queue into.
        #expect(try dealer.trySend([bytes("x")]) == false)
    }

    @Test("a receive timeout ends a blocking receive with EAGAIN")
    func receiveTimeout() async throws {
        let error = try await onSocketThread { context in
            let dealer = try context.makeTestSocket(.dealer)
            defer { dealer.close() }
            try dealer.setOption(.receiveTimeout, to: 20)
            do {
                _ = try dealer.receiveMessage()
                return nil as ZMQError?
            } catch let error as ZMQError {
                return error
            }
        }
        #expect(error?.code == .eagain)
        #expect(error?.isWouldBlock == true)
    }

    @Test("codes without a known name still describe themselves")
    func unnamedCode() {
        let error = ZMQError(code: ZMQError.Code(rawValue: 9999), operation: "zmq_test")
        #expect(error.code.name == nil)
        #expect(error.description.hasPrefix("zmq_test: errno 9999"))
    }
}
