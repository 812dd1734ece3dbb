import Testing
import TollgateZeroMQ

@Suite("ZMQSocketThread")
struct ZMQSocketThreadTests {
    struct Failure: Error, Equatable {}

    @Test("run returns the body's value and rethrows its error")
    func runResult() async throws {
        let value = try await ZMQSocketThread.run(name: "value") { _ in 42 }
        #expect(value == 42)
        await #expect(throws: Failure()) {
            try await ZMQSocketThread.run(name: "failure") { _ in throw Failure() }
        }
    }

    @Test("a loop polling with a timeout stops when asked")
    func stopFlag() async throws {
        let context = try ZMQContext()
        let thread = ZMQSocketThread.start(name: "poller") { thread in
            let socket = try context.makeTestSocket(.router)
            defer { socket.close() }
            _ = try socket.bindToFreeEndpoint(.inproc)
            while !thread.isStopRequested {
                _ = try socket.poll(.readable, timeoutMilliseconds: 20)
            }
        }
        #expect(thread.isStopRequested == false)
        thread.requestStop()
        try await thread.join()
        #expect(thread.isFinished)
        context.close()
    }

    @Test("cancelling the awaiting task stops the loop")
    func cancellation() async throws {
        let task = Task {
            try await ZMQSocketThread.run(name: "cancelled") { thread in
                let context = try ZMQContext()
                defer { context.close() }
                let socket = try context.makeTestSocket(.dealer)
                defer { socket.close() }
                while !thread.isStopRequested {
                    _ = try socket.poll(.readable, timeoutMilliseconds: 10)
                }
                return thread.isStopRequested
            }
        }
        task.cancel()
        #expect(try await task.value == true)
    }

    @Test("a blocking receive fails with ETERM when the context shuts down, and close() then returns")
    func blockingReceiveInterrupted() async throws {
        let context = try ZMQContext()
        let blocked = ZMQSocketThread.start(name: "blocked") { _ in
            let dealer = try context.makeTestSocket(.dealer)
            defer { dealer.close() }
            _ = try dealer.receiveMessage()  // No peer: blocks until the context ends.
        }
        // Not needed for correctness (a receive after shutdown fails at once); it only makes it
        // likely that the thread is really blocked when the shutdown comes.
        try await Task.sleep(for: .milliseconds(50))
        context.shutdown()
        let error = await #expect(throws: ZMQError.self) { try await blocked.join() }
        #expect(error?.code == .eterm)
        context.close()
    }

    @Test("close() interrupts a blocked socket owner and waits until it has closed its socket")
    func closeWaitsForOwner() async throws {
        let context = try ZMQContext()
        let blocked = ZMQSocketThread.start(name: "blocked") { _ in
            let pull = try context.makeTestSocket(.pull)
            defer { pull.close() }
            do {
                _ = try pull.receiveMessage()
            } catch let error as ZMQError where error.isContextTerminated {
                return  // The expected way out.
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        // close() blocks until the socket is closed, so it gets a thread of its own too.
        try await ZMQSocketThread.run(name: "closer") { _ in context.close() }
        #expect(blocked.isFinished)
        try await blocked.join()
    }
}
