import Logging
import Testing
import TollgateCollector
import TollgateTestSupport
import TollgateWire

extension CollectorComponentTests {
    @Suite("UpdatePublisher: real PUB and SUB sockets", .serialized)
    struct UpdatePublisherTests {
        static func update(_ kind: Tollgate_V1_QuotaUpdate.Kind, key: String, version: UInt64) -> Tollgate_V1_QuotaUpdate {
            var update = Tollgate_V1_QuotaUpdate()
            update.kind = kind
            update.keyID = key
            update.version = version
            return update
        }

        @Test("updates go out as [topic, envelope]: u.<key> per key, u.* without a key; counted by kind; dropped after stop")
        func topics() async throws {
            let metrics = TestMetrics.shared
            let publisher = UpdatePublisher(bind: "tcp://127.0.0.1:\(try FreePort.make())", logger: Logger(label: "publisher-test"))
            try await publisher.start()
            let endpoint = try #require(publisher.boundEndpoint)
            let subscriber = UpdateSubscriber(endpoint: endpoint)
            try await subscriber.ready { publisher.publish($0) }
            let revokedBefore = metrics.value(CollectorMetricName.updatesPublished, [("kind", "key_revoked")])

            // Many tasks at once: publish never blocks and nothing is lost on one connection.
            await withTaskGroup(of: Void.self) { group in
                for version in 1...200 {
                    group.addTask { publisher.publish(Self.update(.keyRevoked, key: "k\(version % 4)", version: UInt64(version))) }
                }
            }
            var fleet = Self.update(.planChanged, key: "", version: 201)
            fleet.plan = "free"
            publisher.publish(fleet)
            let last = try await subscriber.first { $0.update.version == 201 }
            #expect(last?.topic == "u.*" && last?.update.plan == "free" && last?.update.kind == .planChanged)
            let perKey = subscriber.received.filter { $0.update.kind == .keyRevoked }
            #expect(perKey.count == 200)
            #expect(perKey.allSatisfy { $0.topic == "u.\($0.update.keyID)" })
            #expect(Set(perKey.map(\.update.version)) == Set(1...200))
            #expect(metrics.value(CollectorMetricName.updatesPublished, [("kind", "key_revoked")]) - revokedBefore == 200)

            await subscriber.stop()
            await publisher.stop()
            let droppedBefore = metrics.value(CollectorMetricName.updatesDropped, [("reason", "stopped")])
            publisher.publish(Self.update(.credited, key: "k1", version: 300))
            #expect(metrics.value(CollectorMetricName.updatesDropped, [("reason", "stopped")]) - droppedBefore == 1)
        }

        @Test("binding an endpoint that is taken fails start, and stop afterwards is harmless")
        func bindFailure() async throws {
            let first = UpdatePublisher(bind: "tcp://127.0.0.1:\(try FreePort.make())", logger: Logger(label: "publisher-test"))
            try await first.start()
            let endpoint = try #require(first.boundEndpoint)
            let second = UpdatePublisher(bind: endpoint, logger: Logger(label: "publisher-test"))
            await #expect(throws: (any Error).self) { try await second.start() }
            await second.stop()
            await first.stop()
        }
    }
}
