import Foundation
import Testing
import TollgateCollector
import TollgateConfig
import TollgateCore
import TollgateRedis
import TollgateStore
import TollgateTestSupport
import TollgateWire

extension CollectorComponentTests {
    @Suite("Admin API: real HTTP, redis-server and a SUB socket", .serialized)
    struct AdminAPITests {
        @Test("PUT plan moves the key in Redis, bumps the version, and publishes PLAN_CHANGED on u.<key> with that version")
        func setPlan() async throws {
            try await withAdminCollector { collector in
                try await withSubscriber(collector) { subscriber in
                    let (status, body) = try await collector.request("PUT", "/v1/admin/keys/demo-free/plan", body: #"{"plan": "pro"}"#)
                    #expect(status == 200)
                    #expect(body["changed"] as? Bool == true && (body["version"] as? NSNumber)?.uint64Value == 2)
                    #expect(try collector.version() == 2)
                    let entry = try collector.redis.withConnection { try KeyRegistry().lookup(keyID: TestKeys.freeID, on: $0) }
                    #expect(entry?.key.plan == "pro")
                    let published = try #require(try await subscriber.first { $0.update.kind == .planChanged })
                    #expect(published.topic == "u.\(TestKeys.freeID)")
                    #expect(published.update.keyID == TestKeys.freeID && published.update.plan == "pro" && published.update.version == 2)

                    // Asking again changes nothing and publishes nothing.
                    let (again, unchanged) = try await collector.request("PUT", "/v1/admin/keys/\(TestKeys.freeID)/plan", body: #"{"plan": "pro"}"#)
                    #expect(again == 200 && unchanged["changed"] as? Bool == false)
                    try await Task.sleep(for: .milliseconds(50))
                    #expect(subscriber.received.count == 1)
                }
            }
        }

        @Test("PUT limits sets and clears overrides; each change publishes PLAN_CHANGED with its version")
        func setLimits() async throws {
            try await withAdminCollector { collector in
                try await withSubscriber(collector) { subscriber in
                    let (status, body) = try await collector.request("PUT", "/v1/admin/keys/demo-pro/limits", body: #"{"api_call": 42}"#)
                    #expect(status == 200)
                    let key = body["key"] as? [String: Any]
                    #expect(((key?["overrides"] as? [String: Any])?["limits"] as? [String: Any])?["api_call"] as? NSNumber == 42)
                    let first = try #require(try await subscriber.first { $0.update.version == 2 })
                    #expect(first.topic == "u.\(TestKeys.proID)" && first.update.kind == .planChanged && first.update.plan == "pro")

                    let (cleared, _) = try await collector.request("PUT", "/v1/admin/keys/demo-pro/limits", body: #"{"api_call": null}"#)
                    #expect(cleared == 200)
                    #expect(try await subscriber.first { $0.update.version == 3 }?.update.kind == .planChanged)
                    let entry = try collector.redis.withConnection { try KeyRegistry().lookup(keyID: TestKeys.proID, on: $0) }
                    #expect(entry?.key.overrides.limits.isEmpty == true && entry?.version == 3)
                }
            }
        }

        @Test("revoke publishes KEY_REVOKED, unrevoke PLAN_CHANGED; the key lookup answers accordingly")
        func revoke() async throws {
            try await withAdminCollector { collector in
                try await withSubscriber(collector) { subscriber in
                    let (status, body) = try await collector.request("POST", "/v1/admin/keys/demo-free/revoke")
                    #expect(status == 200 && (body["key"] as? [String: Any])?["revoked"] as? Bool == true)
                    let revoked = try #require(try await subscriber.first { $0.update.kind == .keyRevoked })
                    #expect(revoked.topic == "u.\(TestKeys.freeID)" && revoked.update.version == 2)
                    #expect(try collector.redis.withConnection { try KeyRegistry().lookup(keyID: TestKeys.freeID, on: $0) }?.revoked == true)

                    let (back, _) = try await collector.request("POST", "/v1/admin/keys/demo-free/unrevoke", body: "{}")
                    #expect(back == 200)
                    let restored = try #require(try await subscriber.first { $0.update.version == 3 })
                    #expect(restored.update.kind == .planChanged && restored.update.keyID == TestKeys.freeID)
                    #expect(try collector.redis.withConnection { try KeyRegistry().lookup(keyID: TestKeys.freeID, on: $0) }?.revoked == false)
                }
            }
        }

        @Test("credit adds to the period's credit field and publishes CREDITED; with an idempotency key it counts once")
        func credit() async throws {
            try await withAdminCollector { collector in
                try await withSubscriber(collector) { subscriber in
                    let body = #"{"feature": "api_call", "units": 500, "idempotency_key": "ticket-7"}"#
                    let (status, answer) = try await collector.request("POST", "/v1/admin/keys/demo-free/credit", body: body)
                    #expect(status == 200 && answer["duplicate"] as? Bool == false)
                    let period = try #require(answer["period"] as? String)
                    #expect(period == ResetInterval.day.period(containing: WallClock().now()).id)
                    let credited = try #require(try await subscriber.first { $0.update.kind == .credited })
                    #expect(credited.topic == "u.\(TestKeys.freeID)")
                    #expect(credited.update.creditedUnits == 500 && credited.update.feature == "api_call" && credited.update.periodID == period)
                    #expect(credited.update.version == 2)

                    let (retry, again) = try await collector.request("POST", "/v1/admin/keys/demo-free/credit", body: body)
                    #expect(retry == 200 && again["duplicate"] as? Bool == true && (again["credit_total"] as? NSNumber)?.uint64Value == 500)
                    let (conflict, refused) = try await collector.request("POST", "/v1/admin/keys/demo-free/credit",
                                                                          body: #"{"units": 7, "idempotency_key": "ticket-7"}"#)
                    #expect(conflict == 409 && refused["error"] as? String == "idempotency_key_reused")
                    let stored = try collector.redis.withConnection { connection in
                        try connection.send("HGET", RedisArgument(RedisKeys.usage(keyID: TestKeys.freeID, feature: "api_call", periodID: period)), "credit").int
                    }
                    #expect(stored == 500)
                    #expect(try collector.version() == 2)
                    try await Task.sleep(for: .milliseconds(50))
                    #expect(subscriber.received.filter { $0.update.kind == .credited }.count == 1)
                }
            }
        }

        @Test("POST keys creates a key (generated or given), publishes KEY_ADDED, and a sidecar lookup knows it")
        func create() async throws {
            try await withAdminCollector { collector in
                try await withSubscriber(collector) { subscriber in
                    let (status, answer) = try await collector.request("POST", "/v1/admin/keys", body: #"{"name": "acme", "plan": "free", "limits": {"api_call": 9}}"#)
                    #expect(status == 201)
                    let apiKey = try #require(answer["api_key"] as? String)
                    let id = APIKeyHasher.keyID(for: apiKey)
                    #expect((answer["key"] as? [String: Any])?["id"] as? String == id)
                    let added = try #require(try await subscriber.first { $0.update.kind == .keyAdded })
                    #expect(added.topic == "u.\(id)" && added.update.plan == "free" && added.update.version == 2)

                    let entry = try collector.redis.withConnection { try KeyRegistry().lookup(keyID: id, on: $0) }
                    #expect(entry?.key.name == "acme" && entry?.key.overrides.limits == [.apiCall: 9])
                    let (given, _) = try await collector.request("POST", "/v1/admin/keys", body: #"{"name": "beta", "plan": "pro", "key": "tg_beta_key_0001"}"#)
                    #expect(given == 201)
                    let (spaced, _) = try await collector.request("POST", "/v1/admin/keys", body: #"{"name": "team a", "plan": "free"}"#)
                    #expect(spaced == 201)
                    let (shown, team) = try await collector.request("GET", "/v1/admin/keys/team%20a")
                    #expect(shown == 200 && team["name"] as? String == "team a")
                    let (listed, list) = try await collector.request("GET", "/v1/admin/keys")
                    let names = (list["keys"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
                    #expect(listed == 200 && names == ["acme", "beta", "demo-free", "demo-pro", "team a"])
                    let (duplicate, dupBody) = try await collector.request("POST", "/v1/admin/keys", body: #"{"name": "beta2", "plan": "pro", "key": "tg_beta_key_0001"}"#)
                    #expect(duplicate == 409 && dupBody["error"] as? String == "key_exists")
                    let (taken, takenBody) = try await collector.request("POST", "/v1/admin/keys", body: #"{"name": "acme", "plan": "pro"}"#)
                    #expect(taken == 409 && takenBody["error"] as? String == "name_taken")

                    var lookup = Tollgate_V1_KeyLookup()
                    lookup.keyID = APIKeyHasher.keyID(for: "tg_beta_key_0001")
                    let exchange = try await dealerExchange(collector.service.ingestConfiguration.routerBind, send: [try frame(.keyLookup(lookup))], expecting: 1)
                    guard case .keyInfo(let info)? = exchange.replies.first?.body else {
                        Issue.record("expected KeyInfo, got \(exchange.replies)")
                        return
                    }
                    #expect(info.known && info.plan == "pro" && info.version == 4)
                }
            }
        }

        @Test("PUT plan document replaces a plan and publishes PLAN_CHANGED fleet-wide on u.*")
        func putPlan() async throws {
            try await withAdminCollector { collector in
                try await withSubscriber(collector) { subscriber in
                    let document = #"{"features": {"api_call": {"limit": 20, "reset": "hour", "policy": "block"}}, "rate": {"capacity": 5, "refill": 1}}"#
                    let (status, answer) = try await collector.request("PUT", "/v1/admin/plans/free", body: document)
                    #expect(status == 200 && answer["changed"] as? Bool == true)
                    let published = try #require(try await subscriber.first { $0.update.kind == .planChanged })
                    #expect(published.topic == "u.*" && published.update.keyID.isEmpty && published.update.plan == "free")
                    #expect(published.update.version == 2)
                    let entry = try collector.redis.withConnection { try KeyRegistry().lookup(keyID: TestKeys.freeID, on: $0) }
                    guard case .metered(let calls)? = entry?.effectivePlan.feature(.apiCall) else {
                        Issue.record("api_call is not metered")
                        return
                    }
                    #expect(calls.limit == 20 && calls.interval == .hour && entry?.effectivePlan.rateTier?.capacity == 5)

                    let (listed, plans) = try await collector.request("GET", "/v1/admin/plans")
                    let free = ((plans["plans"] as? [String: Any])?["free"] as? [String: Any])?["features"] as? [String: Any]
                    #expect(listed == 200 && (free?["api_call"] as? [String: Any])?["reset"] as? String == "hour")
                    let (paid, refusal) = try await collector.request("PUT", "/v1/admin/plans/paid",
                                                                      body: #"{"features": {"api_call": {"limit": 1, "policy": {"payment_required": {"price": "0.01"}}}}}"#)
                    #expect(paid == 400 && refusal["error"] as? String == "invalid_plan")
                }
            }
        }

        @Test("without a token, with a wrong one, or with the API disabled, nothing is changed")
        func authorization() async throws {
            try await withAdminCollector { collector in
                for token in [nil, "wrong-token-0123456789", adminToken + "x", ""] as [String?] {
                    let (status, body) = try await collector.request("PUT", "/v1/admin/keys/demo-free/plan", body: #"{"plan": "pro"}"#, token: token)
                    #expect(status == 401 && body["error"] as? String == "unauthorized")
                }
                #expect(try collector.version() == 1)
                let metrics = TestMetrics.shared.value(CollectorMetricName.adminRequests, [("route", "keys.plan"), ("status", "401")])
                #expect(metrics >= 4)
            }
            try await withAdminCollector(token: nil) { collector in
                let (status, body) = try await collector.request("GET", "/v1/admin/keys", token: "anything-at-all-0123")
                #expect(status == 403 && body["error"] as? String == "admin_disabled")
            }
        }

        @Test("bad bodies get clear 400s (413 when too large) and change nothing")
        func badBodies() async throws {
            try await withAdminCollector { collector in
                let cases: [(String, String, String?, Int, String)] = [
                    ("PUT", "/v1/admin/keys/demo-free/plan", #"{"plan": "gold"}"#, 400, "invalid_request"),
                    ("PUT", "/v1/admin/keys/demo-free/plan", #"{"plan": "pro", "extra": 1}"#, 400, "unknown_field"),
                    ("PUT", "/v1/admin/keys/demo-free/plan", #"{"plan": 5}"#, 400, "bad_json"),
                    ("PUT", "/v1/admin/keys/demo-free/plan", "not json", 400, "bad_json"),
                    ("PUT", "/v1/admin/keys/demo-free/plan", "[1, 2]", 400, "bad_json"),
                    ("PUT", "/v1/admin/keys/demo-free/limits", #"{"api_call": -5}"#, 400, "bad_limit"),
                    ("PUT", "/v1/admin/keys/demo-free/limits", #"{"api_call": 1.5}"#, 400, "bad_limit"),
                    ("PUT", "/v1/admin/keys/demo-free/limits", #"{"export": 1}"#, 400, "invalid_request"),
                    ("PUT", "/v1/admin/keys/demo-free/limits", "{}", 400, "invalid_request"),
                    ("POST", "/v1/admin/keys/demo-free/credit", #"{"units": 0}"#, 400, "invalid_request"),
                    ("POST", "/v1/admin/keys/demo-free/credit", #"{"units": -1}"#, 400, "invalid_request"),
                    ("POST", "/v1/admin/keys/demo-free/credit", #"{"units": 1, "feature": "nope"}"#, 400, "invalid_request"),
                    ("POST", "/v1/admin/keys/demo-free/revoke", #"{"why": "x"}"#, 400, "unknown_field"),
                    ("POST", "/v1/admin/keys", #"{"name": "x", "plan": "free", "key": "short"}"#, 400, "invalid_request"),
                    ("POST", "/v1/admin/keys", #"{"name": "x", "plan": "gold"}"#, 400, "invalid_request"),
                    ("PUT", "/v1/admin/plans/free", #"{"features": {"api_call": {"limit": -3}}}"#, 400, "invalid_plan"),
                    ("PUT", "/v1/admin/plans/free", #"{"features": {"api_call": {"limit": 3, "limt": 4}}}"#, 400, "invalid_plan"),
                    ("PUT", "/v1/admin/plans/bad%20name", #"{"features": {"api_call": {"limit": 3}}}"#, 400, "invalid_plan"),
                    ("PUT", "/v1/admin/plans/free", String(repeating: " ", count: 70_000) + "{}", 413, "body_too_large"),
                    ("PUT", "/v1/admin/keys/nobody/plan", #"{"plan": "pro"}"#, 404, "unknown_key"),
                    ("GET", "/v1/admin/keys/\(APIKeyHasher.keyID(for: "tg_nobody"))", nil, 404, "unknown_key"),
                ]
                for (method, path, body, expectedStatus, expectedError) in cases {
                    let (status, answer) = try await collector.request(method, path, body: body)
                    #expect(status == expectedStatus && answer["error"] as? String == expectedError,
                            "\(method) \(path) \(body?.prefix(60) ?? ""): \(status) \(answer)")
                    #expect(answer["message"] is String)
                }
                #expect(try collector.version() == 1)
            }
        }

        @Test("GET a key by name shows its effective plan")
        func show() async throws {
            try await withAdminCollector { collector in
                let (status, key) = try await collector.request("GET", "/v1/admin/keys/demo-pro")
                #expect(status == 200 && key["id"] as? String == TestKeys.proID && key["source"] as? String == "config")
                let features = (key["effective"] as? [String: Any])?["features"] as? [String: Any]
                #expect((features?["api_call"] as? [String: Any])?["limit"] as? NSNumber == 250_000)
                #expect((features?["export"] as? [String: Any])?["enabled"] as? Bool == true)
            }
        }
    }
}
