import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
import TollgateSidecar

@Suite("Proxy forwarding", .timeLimit(.minutes(1)))
struct ProxyForwardingTests {
    @Test func forwardsAndMetersOneCall() async throws {
        try await withProxy { proxy in
            let response = try await proxy.send(TestRequest(.GET, "/hello", headers: [bearer(TestKeys.alice)]))
            #expect(response.status == .ok)
            #expect(response.text == "ok\n")
            let events = proxy.recorder.events
            #expect(events.count == 1)
            let event = try #require(events.first).event
            #expect(event.key == TestKeys.id(TestKeys.alice))
            #expect(event.feature == .apiCall)
            #expect(event.units == 1)
            #expect(event.statusClass == .success)
            #expect(event.responseBytes == 3)
            #expect(event.requestBytes == 0)
            #expect(event.latency > .zero)
        }
    }

    @Test func keepAliveReusesOneClientConnection() async throws {
        try await withProxy { proxy in
            let client = try await proxy.client()
            for i in 0..<20 {
                let response = try await client.send(TestRequest(.GET, "/n/\(i)", headers: [("X-API-Key", TestKeys.bob)]))
                #expect(response.status == .ok)
            }
            #expect(client.channel.isActive)
            await client.close()
            #expect(proxy.recorder.events.count == 20)
        }
    }

    @Test func chunkedRequestBodyStreamsThrough() async throws {
        try await withProxy { proxy in
            let parts = (0..<10).map { ByteBuffer(string: String(repeating: Character(String($0)), count: 1000)) }
            let response = try await proxy.send(TestRequest(.POST, "/echo", headers: [bearer(TestKeys.alice)], body: parts))
            #expect(response.status == .ok)
            #expect(response.body.readableBytes == 10_000)
            #expect(response.text == parts.map { String(buffer: $0) }.joined())
            #expect(proxy.recorder.events.first?.event.requestBytes == 10_000)
            #expect(proxy.recorder.events.first?.event.responseBytes == 10_000)
        }
    }

    @Test func fiveMegabytesThroughAndBack() async throws {
        try await withProxy { proxy in
            // 80 parts of 64 KiB, each a different byte, so a reordered or dropped part shows.
            let parts = (0..<80).map { ByteBuffer(repeating: UInt8(truncatingIfNeeded: $0 &* 37 &+ 1), count: 65_536) }
            var expected = ByteBuffer()
            for part in parts { expected.writeImmutableBuffer(part) }
            let total = expected.readableBytes
            let response = try await proxy.send(
                TestRequest(.PUT, "/echo", headers: [bearer(TestKeys.alice), ("content-length", String(total))], body: parts)
            )
            #expect(response.status == .ok)
            #expect(response.body.readableBytes == total)
            #expect(response.body == expected)
            let event = try #require(proxy.recorder.events.first).event
            #expect(event.requestBytes == UInt64(total))
            #expect(event.responseBytes == UInt64(total))
        }
    }

    @Test func largeResponseStreamsToClient() async throws {
        try await withProxy { proxy in
            let response = try await proxy.send(TestRequest(.GET, "/bytes/3000000", headers: [bearer(TestKeys.alice)]))
            #expect(response.status == .ok)
            #expect(response.body.readableBytes == 3_000_000)
            #expect(proxy.recorder.events.first?.event.responseBytes == 3_000_000)
        }
    }

    @Test func twoThousandRequestsOverThirtyTwoConnections() async throws {
        try await withProxy { proxy in
            let total = 2_000
            let connections = 32
            let expected = Self.expectedPerKey(total: total, connections: connections)
            try await withThrowingTaskGroup(of: Int.self) { group in
                for c in 0..<connections {
                    let count = total / connections + (c < total % connections ? 1 : 0)
                    group.addTask {
                        let client = try await proxy.client()
                        var ok = 0
                        var sent = 0
                        while sent < count {
                            let batch = min(c % 2 == 0 ? 8 : 1, count - sent)  // half pipeline 8 deep, half one by one
                            let requests = (0..<batch).map { i in
                                TestRequest(.GET, "/c/\(c)/\(sent + i)", headers: [bearer(TestKeys.all[(sent + i) % 4])])
                            }
                            ok += try await client.pipeline(requests).filter { $0.status == .ok }.count
                            sent += batch
                        }
                        await client.close()
                        return ok
                    }
                }
                var ok = 0
                for try await n in group { ok += n }
                #expect(ok == total)
            }
            let events = proxy.recorder.events
            #expect(events.count == total)
            var perKey: [String: Int] = [:]
            for (event, _) in events { perKey[event.key, default: 0] += 1 }
            #expect(perKey == expected)
        }
    }

    /// Requests per key id when connection `c` sends its `i`-th request with key `i % 4`.
    static func expectedPerKey(total: Int, connections: Int) -> [String: Int] {
        var expected: [String: Int] = [:]
        for c in 0..<connections {
            for i in 0..<(total / connections + (c < total % connections ? 1 : 0)) {
                expected[TestKeys.id(TestKeys.all[i % 4]), default: 0] += 1
            }
        }
        return expected
    }

    @Test func tollgateUnitsAreMeteredAndStripped() async throws {
        try await withProxy(configure: { $0.routes = FeatureRoutes([FeatureRoute(prefix: "/units", feature: "tokens")]) }) { proxy in
            let response = try await proxy.send(
                TestRequest(.GET, "/units", headers: [bearer(TestKeys.carol), ("X-Demo-Units", "tokens=532, compute_ms=12")])
            )
            #expect(response.status == .ok)
            #expect(!response.headers.contains(name: "Tollgate-Units"))
            let recorded = try #require(proxy.recorder.events.first)
            #expect(recorded.event.feature == "tokens")
            #expect(recorded.event.units == 532)
            #expect(recorded.extra == ["compute_ms": 12])
        }
    }

    @Test func malformedTollgateUnitsAreIgnored() async throws {
        try await withProxy(configure: { $0.routes = FeatureRoutes([FeatureRoute(prefix: "/units", feature: "tokens")]) }) { proxy in
            let response = try await proxy.send(
                TestRequest(.GET, "/units", headers: [bearer(TestKeys.carol), ("X-Demo-Units", "tokens=lots")])
            )
            #expect(response.status == .ok)
            #expect(!response.headers.contains(name: "Tollgate-Units"))
            let recorded = try #require(proxy.recorder.events.first)
            #expect(recorded.event.units == 1)
            #expect(recorded.extra.isEmpty)
        }
    }

    @Test func hopByHopHeadersRemovedAndForwardedForSet() async throws {
        try await withProxy { proxy in
            let response = try await proxy.send(
                TestRequest(
                    .GET, "/headers",
                    headers: [
                        bearer(TestKeys.alice), ("Connection", "keep-alive, X-Secret-Hop"), ("X-Secret-Hop", "1"),
                        ("Keep-Alive", "timeout=5"), ("Proxy-Authorization", "Basic abc"), ("TE", "trailers"),
                        ("Upgrade", "websocket"), ("X-Forwarded-For", "203.0.113.7"), ("X-Custom", "kept"),
                    ]
                )
            )
            #expect(response.status == .ok)
            let lines = Set(response.text.split(separator: "\n").map { $0.lowercased() })
            let names = Set(lines.compactMap { $0.split(separator: ":").first.map(String.init) })
            for hop in ["connection", "x-secret-hop", "keep-alive", "proxy-authorization", "te", "upgrade"] {
                #expect(!names.contains(hop), "\(hop) reached the upstream")
            }
            #expect(lines.contains("x-custom: kept"))
            #expect(lines.contains("x-forwarded-for: 203.0.113.7, 127.0.0.1"))
            #expect(lines.contains("x-forwarded-proto: http"))
            #expect(lines.contains("x-forwarded-host: test.local"))
            #expect(lines.contains("host: test.local"))
        }
    }

    @Test func routesPickLongestPrefix() {
        let routes = FeatureRoutes([
            FeatureRoute(prefix: "/v1", feature: "v1"),
            FeatureRoute(prefix: "/v1/chat", feature: "tokens"),
        ])
        #expect(routes.feature(forURI: "/v1/chat/completions?x=1") == "tokens")
        #expect(routes.feature(forURI: "/v1/models") == "v1")
        #expect(routes.feature(forURI: "/v2") == .apiCall)
        #expect(routes.feature(forURI: "/v?/v1/chat") == .apiCall)
    }
}
