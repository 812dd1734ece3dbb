import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
import TollgateSidecar

@Suite("Proxy refusals and failures", .timeLimit(.minutes(1)))
struct ProxyRefusalTests {
    @Test func unknownKeyIs401() async throws {
        try await withProxy { proxy in
            let response = try await proxy.send(TestRequest(.GET, "/", headers: [bearer("tg_not_a_key")]))
            #expect(response.status == .unauthorized)
            #expect(response.text.contains(#""error":"unknown_api_key""#))
            #expect(response.headers.first(name: "content-type") == "application/json")
            #expect(proxy.recorder.events.isEmpty)
        }
    }

    @Test func missingKeyIs401AndConnectionStaysUsable() async throws {
        try await withProxy { proxy in
            let client = try await proxy.client()
            let refused = try await client.send(TestRequest(.GET, "/"))
            #expect(refused.status == .unauthorized)
            #expect(refused.text.contains(#""error":"missing_api_key""#))
            let served = try await client.send(TestRequest(.GET, "/", headers: [bearer(TestKeys.alice)]))
            #expect(served.status == .ok)
            await client.close()
            #expect(proxy.recorder.events.count == 1)
        }
    }

    @Test func anonymousPlanServesByClientIP() async throws {
        try await withProxy(configure: { $0.anonymousPlan = "free" }) { proxy in
            let response = try await proxy.send(TestRequest(.GET, "/"))
            #expect(response.status == .ok)
            #expect(proxy.recorder.events.first?.event.key == "anon.free.127.0.0.1")
        }
    }

    @Test func configuredKeyHeaderIsRead() async throws {
        try await withProxy(configure: { $0.keyHeader = "X-Tollgate-Key" }) { proxy in
            let response = try await proxy.send(TestRequest(.GET, "/", headers: [("x-tollgate-key", TestKeys.dave)]))
            #expect(response.status == .ok)
            #expect(proxy.recorder.events.first?.event.key == TestKeys.id(TestKeys.dave))
        }
    }

    @Test func slowResolverIsAwaitedOnce() async throws {
        let resolver = SlowResolver(known: TestKeys.id(TestKeys.bob))
        try await withProxy(resolver: resolver) { proxy in
            let first = try await proxy.send(TestRequest(.GET, "/", headers: [bearer(TestKeys.bob)]))
            #expect(first.status == .ok)
            let unknown = try await proxy.send(TestRequest(.GET, "/", headers: [bearer(TestKeys.carol)]))
            #expect(unknown.status == .unauthorized)
            #expect(proxy.recorder.events.count == 1)
        }
    }

    @Test func upstreamDownIs502() async throws {
        try await withProxy(upstreamDown: true) { proxy in
            let response = try await proxy.send(TestRequest(.GET, "/", headers: [bearer(TestKeys.alice)]))
            #expect(response.status == .badGateway)
            #expect(response.text.contains(#""error":"upstream_unavailable""#))
            #expect(proxy.recorder.events.first?.event.statusClass == .serverError)
        }
    }

    @Test func slowUpstreamIs504() async throws {
        try await withProxy(configure: { $0.upstreamReadTimeout = .milliseconds(200) }) { proxy in
            let client = try await proxy.client()
            let response = try await client.send(TestRequest(.GET, "/slow/5000", headers: [bearer(TestKeys.alice)]))
            #expect(response.status == .gatewayTimeout)
            #expect(response.text.contains(#""error":"upstream_timeout""#))
            #expect(proxy.recorder.events.first?.event.statusClass == .serverError)
            let next = try await client.send(TestRequest(.GET, "/", headers: [bearer(TestKeys.alice)]))
            #expect(next.status == .ok)
            await client.close()
        }
    }

    @Test func malformedRequestLineIs400() async throws {
        try await withProxy { proxy in
            let raw = try await proxy.raw()
            try await raw.write("GET /\u{01} HTTP/1.1 what\r\n\r\n")
            let reply = try await raw.readUntilClose()
            #expect(reply.hasPrefix("HTTP/1.1 400"))
            #expect(reply.contains("bad_request"))
            #expect(proxy.recorder.events.isEmpty)
        }
    }

    @Test func hugeHeaderIs431() async throws {
        try await withProxy { proxy in
            let raw = try await proxy.raw()
            let big = String(repeating: "a", count: 100 * 1024)
            try await raw.write("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n")
            let reply = try await raw.readUntilClose()
            #expect(reply.hasPrefix("HTTP/1.1 431"))
        }
    }

    @Test func bodyOverLimitIs413() async throws {
        try await withProxy(configure: { $0.maxRequestBodyBytes = 100_000 }) { proxy in
            let declared = try await proxy.send(
                TestRequest(.POST, "/echo", headers: [bearer(TestKeys.alice), ("content-length", "200000")],
                            body: [ByteBuffer(repeating: 1, count: 200_000)])
            )
            #expect(declared.status == .payloadTooLarge)
            let chunked = try await proxy.send(
                TestRequest(.POST, "/echo", headers: [bearer(TestKeys.alice)],
                            body: (0..<20).map { _ in ByteBuffer(repeating: 2, count: 10_000) })
            )
            #expect(chunked.status == .payloadTooLarge)
            #expect(chunked.text.contains("request_body_too_large"))
            #expect(proxy.recorder.events.isEmpty)
        }
    }

    @Test func clientDisconnectMidUploadDoesNotHurt() async throws {
        try await withProxy { proxy in
            let raw = try await proxy.raw()
            try await raw.write("POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestKeys.alice)\r\nContent-Length: 1000000\r\n\r\n")
            try await raw.write(ByteBuffer(repeating: 7, count: 100_000))
            await raw.close()
            let response = try await proxy.send(TestRequest(.GET, "/", headers: [bearer(TestKeys.alice)]))
            #expect(response.status == .ok)
        }
    }

    @Test func upstreamDisconnectMidResponseClosesClient() async throws {
        try await withProxy { proxy in
            let client = try await proxy.client()
            await #expect(throws: ConnectionClosed.self) {
                _ = try await client.send(TestRequest(.GET, "/truncate", headers: [bearer(TestKeys.alice)]))
            }
            try await client.channel.closeFuture.get()
            let response = try await proxy.send(TestRequest(.GET, "/", headers: [bearer(TestKeys.alice)]))
            #expect(response.status == .ok)
        }
    }
}

/// A resolver that caches nothing and answers after a hop, like one that asks the collector.
struct SlowResolver: PrincipalResolver {
    let known: String

    func cached(keyID: String) -> Principal? { nil }

    func resolve(keyID: String) async -> Principal? {
        await Task.yield()
        return keyID == self.known ? Principal(keyID: keyID, plan: "pro", isKnown: true) : .unknown(keyID: keyID)
    }
}
