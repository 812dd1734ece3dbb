#if canImport(Glibc)
import Glibc
#endif
import Testing
import TollgateZeroMQ

@Suite("ZMQPoller")
struct ZMQPollerTests {
    @Test("poll reports which of several sockets are ready", arguments: Transport.allCases)
    func readiness(transport: Transport) async throws {
        let (idle, ready) = try await onSocketThread { context in
            let quietRouter = try context.makeTestSocket(.router)
            defer { quietRouter.close() }
            _ = try quietRouter.bindToFreeEndpoint(transport)
            let busyRouter = try context.makeTestSocket(.router)
            defer { busyRouter.close() }
            let endpoint = try busyRouter.bindToFreeEndpoint(transport)
            let dealer = try context.makeTestSocket(.dealer)
            defer { dealer.close() }
            try dealer.connect(endpoint)

            var poller = ZMQPoller()
            poller.register(quietRouter, for: .readable)
            poller.register(busyRouter, for: .readable)
            poller.register(dealer, for: [.readable, .writable])

            let idle = try poller.poll(timeoutMilliseconds: 0)
            try dealer.send([bytes("ping")])
            // Wait for the message, bounded; writability of the dealer alone would end a poll early.
            var ready = try poller.poll(timeoutMilliseconds: 5000)
            let stop = deadline(seconds: 5)
            while !ready[1].contains(.readable), ContinuousClock.now < stop {
                ready = try poller.poll(timeoutMilliseconds: 50)
            }
            return (idle, ready)
        }

        #expect(idle[0] == [] && idle[1] == [])
        #expect(ready[0] == [])
        #expect(ready[1] == .readable)
        #expect(ready[2] == .writable)
    }

    @Test("a plain file descriptor polls beside a socket")
    func fileDescriptor() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let socket = try context.makeTestSocket(.dealer)
        defer { socket.close() }
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        var poller = ZMQPoller()
        poller.register(socket, for: .readable)
        let pipeIndex = poller.register(fileDescriptor: ends[0], for: .readable)
        #expect(try poller.poll(timeoutMilliseconds: 0) == [[], []])
        var byte: UInt8 = 1
        #expect(write(ends[1], &byte, 1) == 1)
        let ready = try poller.poll(timeoutMilliseconds: 5_000)
        #expect(ready[0] == [] && ready[pipeIndex].contains(.readable))
    }

    @Test("polling a closed socket fails with ENOTSOCK")
    func closedSocket() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let socket = try context.makeTestSocket(.dealer)
        var poller = ZMQPoller()
        poller.register(socket, for: .readable)
        socket.close()
        let error = try #require(throws: ZMQError.self) { try poller.poll(timeoutMilliseconds: 0) }
        #expect(error.code == .enotsock)
    }
}
