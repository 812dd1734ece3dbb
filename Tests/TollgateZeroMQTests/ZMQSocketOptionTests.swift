import Testing
import TollgateZeroMQ

@Suite("Socket options")
struct ZMQSocketOptionTests {
    @Test("integer, flag and byte options read back what was set")
    func roundTrip() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let socket = try context.makeTestSocket(.router)
        defer { socket.close() }
        #expect(socket.kind == .router)

        let intOptions: [(ZMQSocketOption<Int32>, Int32)] = [
            (.linger, 250), (.sendHighWaterMark, 5000), (.receiveHighWaterMark, 6000),
            (.reconnectInterval, 50), (.reconnectIntervalMax, 2000),
            (.receiveTimeout, 1500), (.sendTimeout, 1600), (.handshakeInterval, 3000),
        ]
        for (option, value) in intOptions {
            try socket.setOption(option, to: value)
            #expect(try socket.option(option) == value, "\(option.name)")
        }
        try socket.setOption(.immediate, to: true)
        #expect(try socket.option(.immediate) == true)
        try socket.setOption(.immediate, to: false)
        #expect(try socket.option(.immediate) == false)
        try socket.setOption(.routingID, to: [0x01, 0x00, 0xFF])
        #expect(try socket.option(.routingID) == [0x01, 0x00, 0xFF])
    }

    @Test("CURVE options read back as keys")
    func curveKeys() throws {
        guard ZMQLibrary.has("curve") else { return }
        let context = try ZMQContext()
        defer { context.close() }
        let socket = try context.makeTestSocket(.dealer)
        defer { socket.close() }
        let server = try ZMQCurveKeyPair.generate()
        let client = try ZMQCurveKeyPair.generate()
        try socket.setOption(.curveServerKey, to: server.publicKey)
        try socket.setOption(.curvePublicKey, to: client.publicKey)
        try socket.setOption(.curveSecretKey, to: client.secretKey)
        #expect(try socket.option(.curveServerKey) == server.publicKey)
        #expect(try socket.option(.curvePublicKey) == client.publicKey)
        #expect(try socket.option(.curveSecretKey) == client.secretKey)
        #expect(try socket.option(.curveServer) == false)
    }

    @Test("a wildcard TCP bind reports the port it picked")
    func lastEndpoint() throws {
        let context = try ZMQContext()
        defer { context.close() }
        let socket = try context.makeTestSocket(.pub)
        defer { socket.close() }
        try socket.bind("tcp://127.0.0.1:*")
        let endpoint = try socket.lastEndpoint
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        #expect(Int(endpoint.split(separator: ":").last ?? "").map { $0 > 0 } == true)
        try socket.unbind(endpoint)
        #expect(ZMQLibrary.version.hasPrefix("4."))
    }
}
