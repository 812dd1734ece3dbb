import NIOCore
import NIOHTTP1
import Testing
import TollgateConfig
import TollgateCore
import TollgateSidecar

@Suite("Proxy connections and lifecycle", .timeLimit(.minutes(1)))
struct ProxyConnectionTests {
    @Test func steadyTrafficReusesOneUpstreamConnection() async throws {
        try await withProxy { proxy in
            let client = try await proxy.client()
            var peers = Set<String>()
            for _ in 0..<30 {
                let response = try await client.send(TestRequest(.GET, "/peer", headers: [bearer(TestKeys.alice)]))
                #expect(response.status == .ok)
                peers.insert(response.text)
            }
            await client.close()
            #expect(peers.count == 1)
        }
    }

    @Test func http10ClientGetsResponseAndClose() async throws {
        try await withProxy { proxy in
            let raw = try await proxy.raw()
            try await raw.write("GET / HTTP/1.0\r\nAuthorization: Bearer \(TestKeys.alice)\r\n\r\n")
            let reply = try await raw.readUntilClose()
            #expect(reply.hasPrefix("HTTP/1.0 200"))
            #expect(reply.hasSuffix("\r\n\r\nok\n"))
            #expect(!reply.lowercased().contains("transfer-encoding"))
        }
    }

    @Test func http10ClientGetsAChunkedResponseAsItsDataThenTheClose() async throws {
        try await withProxy { proxy in
            // The demo upstream echoes a body chunked; an HTTP/1.0 client cannot take chunks.
            let raw = try await proxy.raw()
            try await raw.write("PUT /echo HTTP/1.0\r\nAuthorization: Bearer \(TestKeys.alice)\r\nContent-Length: 11\r\n\r\nhello world")
            let reply = try await raw.readUntilClose()
            #expect(reply.hasPrefix("HTTP/1.0 200"))
            #expect(reply.hasSuffix("\r\n\r\nhello world"))
            #expect(!reply.lowercased().contains("transfer-encoding"))
            #expect(proxy.recorder.events.first?.event.responseBytes == 11)
        }
    }

    @Test func pipelinedRequestsAnswerInOrder() async throws {
        try await withProxy { proxy in
            let client = try await proxy.client()
            let requests = (0..<16).map { i in TestRequest(.GET, "/bytes/\(i)", headers: [bearer(TestKeys.bob)]) }
            let responses = try await client.pipeline(requests)
            #expect(responses.map(\.body.readableBytes) == Array(0..<16))
            await client.close()
            #expect(proxy.recorder.events.count == 16)
        }
    }

    @Test func pipelinedRefusalsAndForwardsStayInOrder() async throws {
        try await withProxy { proxy in
            let client = try await proxy.client()
            let requests = [
                TestRequest(.GET, "/bytes/1", headers: [bearer(TestKeys.alice)]),
                TestRequest(.GET, "/bytes/2"),
                TestRequest(.POST, "/echo", headers: [bearer(TestKeys.alice)], body: [ByteBuffer(string: "abc")]),
                TestRequest(.GET, "/bytes/4", headers: [bearer("tg_wrong")]),
                TestRequest(.GET, "/bytes/5", headers: [bearer(TestKeys.alice)]),
            ]
            let responses = try await client.pipeline(requests)
            #expect(responses.map(\.status.code) == [200, 401, 200, 401, 200])
            #expect(responses[0].body.readableBytes == 1)
            #expect(responses[2].text == "abc")
            #expect(responses[4].body.readableBytes == 5)
            await client.close()
            #expect(proxy.recorder.events.count == 3)
        }
    }

    @Test func gracefulShutdownFinishesInFlightRequest() async throws {
        let resolver = SignalingResolver()
        try await withProxy(resolver: resolver) { proxy in
            let client = try await proxy.client()
            // Slow enough that shutdown begins before the upstream answers, even on a loaded machine.
            async let response = client.send(TestRequest(.GET, "/slow/2000", headers: [bearer(TestKeys.alice)]))
            await resolver.firstLookup()  // the request head reached the proxy
            await proxy.proxy.shutdown()
            let finished = try await response
            #expect(finished.status == .ok)
            #expect(finished.headers.first(name: "connection") == "close")
            try await client.channel.closeFuture.get()
            await #expect(throws: (any Error).self) { _ = try await proxy.client() }
        }
    }

    @Test func configurationFromSidecarSettings() throws {
        var settings = SidecarSettings()
        settings.listen = "0.0.0.0:8443"
        settings.upstream = "http://10.0.0.5:9000/"
        settings.keyHeader = "X-Key"
        let configuration = try ProxyConfiguration(settings: settings)
        #expect(configuration.listenHost == "0.0.0.0")
        #expect(configuration.listenPort == 8443)
        #expect(configuration.upstreamHost == "10.0.0.5")
        #expect(configuration.upstreamPort == 9000)
        #expect(configuration.keyHeader == "X-Key")
        settings.upstream = "https://example.com"
        #expect(throws: ProxyError.self) { try ProxyConfiguration(settings: settings) }
    }
}

/// The table resolver, plus a signal when the first request asks it.
final class SignalingResolver: PrincipalResolver, Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Void.self)
    }

    func cached(keyID: String) -> Principal? {
        self.continuation.yield()
        return TestKeys.resolver.cached(keyID: keyID)
    }

    func resolve(keyID: String) async -> Principal? {
        await TestKeys.resolver.resolve(keyID: keyID)
    }

    func firstLookup() async {
        var iterator = self.stream.makeAsyncIterator()
        _ = await iterator.next()
    }
}
