"""Issue 4 acceptance: fleet-wide quota enforcement with local decisions.

Four sidecars serve keys whose quota the whole fleet must respect exactly under `block` (strict
leases); overage serves and bills; payment_required answers 402; the collector going away is
handled as each plan says, and Redis still counts exactly what was served.
"""
import hashlib
import re
import time
from collections import Counter

import requests

import loadgen
from conftest import wait_until


def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()


def start_fleet(cluster, plans, keys, sidecars=4, extra=""):
    cluster.config(plans, keys, extra)
    cluster.start_redis()
    cluster.start_upstream()
    cluster.start_collector()
    for _ in range(sidecars):
        cluster.start_sidecar()


def targets(cluster):
    return [("127.0.0.1", s["listen"]) for s in cluster.sidecars]


def metric(cluster, sidecar, name, labels=""):
    text = requests.get(f"http://127.0.0.1:{sidecar['admin']}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (not labels or labels in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def usage(cluster, key, period=None):
    url = f"http://127.0.0.1:{cluster.collectors[0]['http']}/v1/usage/{key_id(key)}"
    return requests.get(url, params={"period": period} if period else None, timeout=5).json()


def check_429(response, feature, quota, window):
    assert response.status == 429, response
    retry = int(response.headers["retry-after"])
    assert 0 < retry <= window
    assert response.headers["ratelimit-policy"] == f'"{feature}";q={quota};w={window}'
    match = re.fullmatch(rf'"{feature}";r=(\d+);t=(\d+)', response.headers["ratelimit"])
    assert match and int(match.group(1)) == 0 and int(match.group(2)) == retry, response.headers["ratelimit"]
    assert b'"error":"quota_exhausted"' in response.body


BLOCK_PLANS = """
  daily:
    features:
      api_call: {limit: 10000, reset: day}
"""


def test_block_exactly_the_quota_is_served_across_four_sidecars(cluster):
    start_fleet(cluster, BLOCK_PLANS, "  - {key: tg_block_key, plan: daily, name: blocked}")
    responses = loadgen.run(targets(cluster), total=40_000, connections=128, path="/v1/echo",
                            headers={"X-API-Key": "tg_block_key"})
    statuses = Counter(r.status for r in responses)
    assert statuses == {200: 10_000, 429: 30_000}, statuses
    for r in responses:
        if r.status == 429:
            check_429(r, "api_call", 10_000, 86_400)
        else:
            # RateLimit headers on every response, not only on refusals.
            assert r.headers["ratelimit-policy"] == '"api_call";q=10000;w=86400'
            assert re.fullmatch(r'"api_call";r=\d+;t=\d+', r.headers["ratelimit"])
    # Every sidecar served some of it: the quota really was shared.
    served_by = Counter(r.target for r in responses if r.status == 200)
    assert len(served_by) == 4, served_by
    wait_until(lambda: cluster.redis_calls(key_id("tg_block_key")) == 10_000, timeout=30,
               what="Redis counts 10,000 calls")
    time.sleep(0.5)
    assert cluster.redis_calls(key_id("tg_block_key")) == 10_000
    report = usage(cluster, "tg_block_key")
    api = next(f for f in report["features"] if f["feature"] == "api_call")
    assert (api["used"], api["remaining"]) == (10_000, 0)
    # Round trips: only decisions that found no lease waited for the collector.
    # Decision counts reach /metrics in batches (every 512 decisions or 100 ms).
    wait_until(lambda: sum(metric(cluster, s, "tollgate_sidecar_quota_decisions_total") for s in cluster.sidecars) == 40_000,
               timeout=5, what="40,000 decisions counted")
    decisions = sum(metric(cluster, s, "tollgate_sidecar_quota_decisions_total") for s in cluster.sidecars)
    waited = sum(metric(cluster, s, "tollgate_sidecar_quota_round_trips_total") for s in cluster.sidecars)
    print(f"\nround trips: {int(waited)} of {int(decisions)} decisions waited for the collector "
          f"({100 * waited / decisions:.3f}%)")


THREE_PLANS = """
  small:
    features:
      api_call: {limit: 1500, reset: day}
  medium:
    features:
      api_call: {limit: 4000, reset: hour}
  large:
    features:
      api_call: {limit: 7000, reset: month}
"""
THREE_KEYS = """
  - {key: tg_small_key, plan: small, name: small}
  - {key: tg_medium_key, plan: medium, name: medium}
  - {key: tg_large_key, plan: large, name: large}
"""


def test_block_three_plans_at_once(cluster):
    start_fleet(cluster, THREE_PLANS, THREE_KEYS)
    keys = ["tg_small_key", "tg_medium_key", "tg_large_key"]
    limits = {"tg_small_key": 1500, "tg_medium_key": 4000, "tg_large_key": 7000}
    sent = {"tg_small_key": 6000, "tg_medium_key": 9000, "tg_large_key": 15000}
    plan = [k for k in keys for _ in range(sent[k])]
    # Interleave the keys so all three run out while the others are still busy.
    plan = [plan[i] for i in sorted(range(len(plan)), key=lambda i: (i * 7919) % len(plan))]
    responses = loadgen.run(targets(cluster), total=len(plan), connections=96, path="/v1/echo",
                            requests=lambda n: ("/v1/echo", {"X-API-Key": plan[n]}))
    served = Counter()
    refused = Counter()
    for r in responses:
        (served if r.status == 200 else refused)[plan[r.number]] += 1
        assert r.status in (200, 429), r
    assert served == limits, served
    assert refused == {k: sent[k] - limits[k] for k in keys}, refused
    for k in keys:
        wait_until(lambda: cluster.redis_calls(key_id(k)) == limits[k], timeout=30, what=f"Redis counts for {k}")


OVERAGE_PLANS = """
  metered:
    features:
      api_call:
        limit: 1000
        reset: day
        policy: {overage: {price: "0.001", per: 1}}
  capped:
    features:
      api_call:
        limit: 1000
        reset: day
        policy: {overage: {price: "0.002", per: 1, spend_cap: "0.5", fallback: block}}
"""
OVERAGE_KEYS = """
  - {key: tg_overage_key, plan: metered, name: overage}
  - {key: tg_capped_key, plan: capped, name: capped}
"""
X402 = """
x402:
  network: eip155:84532
  asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
  pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
  extra: {name: USDC, version: "2"}
  facilitator: {url: "http://127.0.0.1:9"}
"""


def test_overage_serves_everything_and_bills_the_excess_up_to_the_cap(cluster):
    start_fleet(cluster, OVERAGE_PLANS, OVERAGE_KEYS, sidecars=2, extra=X402)
    responses = loadgen.run(targets(cluster), total=5000, connections=32, path="/v1/echo",
                            headers={"X-API-Key": "tg_overage_key"})
    assert Counter(r.status for r in responses) == {200: 5000}
    wait_until(lambda: cluster.redis_calls(key_id("tg_overage_key")) == 5000, timeout=30, what="5,000 counted")
    api = next(f for f in usage(cluster, "tg_overage_key")["features"] if f["feature"] == "api_call")
    # 4,000 overage units at 0.001 USDC (1,000 atomic units) each: 4,000,000 atomic units, exactly.
    assert (api["used"], api["overage_units"], api["overage_charge"]) == (5000, 4000, 4_000_000), api

    # The cap: 0.5 USDC at 0.002 per unit pays for exactly 250 overage units; then block.
    responses = loadgen.run(targets(cluster), total=2000, connections=32, path="/v1/echo",
                            headers={"X-API-Key": "tg_capped_key"})
    statuses = Counter(r.status for r in responses)
    assert statuses == {200: 1250, 429: 750}, statuses
    wait_until(lambda: cluster.redis_calls(key_id("tg_capped_key")) == 1250, timeout=30, what="1,250 counted")
    api = next(f for f in usage(cluster, "tg_capped_key")["features"] if f["feature"] == "api_call")
    assert (api["overage_units"], api["overage_charge"], api["spend_cap"]) == (250, 500_000, 500_000), api


PAYG_PLANS = """
  payg:
    features:
      api_call:
        limit: 1000
        reset: day
        policy: {payment_required: {price: "0.01", buys: {units: 100}}}
"""


def test_payment_required_after_the_quota(cluster):
    start_fleet(cluster, PAYG_PLANS, "  - {key: tg_payg_key, plan: payg, name: payg}", sidecars=2, extra=X402)
    responses = loadgen.run(targets(cluster), total=1000, connections=16, path="/v1/echo",
                            headers={"X-API-Key": "tg_payg_key"})
    assert Counter(r.status for r in responses) == {200: 1000}
    for sidecar in cluster.sidecars:
        r = requests.get(f"http://127.0.0.1:{sidecar['listen']}/v1/echo", headers={"X-API-Key": "tg_payg_key"}, timeout=5)
        assert r.status_code == 402, r.text
        assert r.headers["ratelimit-policy"] == '"api_call";q=1000;w=86400'
        assert "payment-required" in {k.lower() for k in r.headers}
        body = r.json()
        assert body["x402Version"] == 1 and body["accepts"], body
        accepted = body["accepts"][0]
        assert accepted["maxAmountRequired"] == "10000"
        assert accepted["payTo"] == "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
        try:
            from x402_check import assert_valid_challenge
        except ImportError:
            continue
        assert_valid_challenge(dict(r.headers), r.content, amount=10000,
                               pay_to="0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
                               network_caip2="eip155:84532", asset="0x036CbD53842c5426634e7929541eC2318f3dCF7e")
    wait_until(lambda: cluster.redis_calls(key_id("tg_payg_key")) == 1000, timeout=30, what="1,000 counted")


UNREACHABLE_PLANS = """
  open:
    features:
      api_call: {limit: 100000, reset: day, when_unreachable: fail_open}
  closed:
    features:
      api_call: {limit: 100000, reset: day, when_unreachable: fail_closed}
"""
UNREACHABLE_KEYS = """
  - {key: tg_open_key, plan: open, name: open}
  - {key: tg_closed_key, plan: closed, name: closed}
"""


def test_collector_down_fail_open_and_fail_closed(cluster):
    start_fleet(cluster, UNREACHABLE_PLANS, UNREACHABLE_KEYS, sidecars=2)
    served = Counter()

    def send(key, n):
        out = loadgen.run(targets(cluster), total=n, connections=8, path="/v1/echo", headers={"X-API-Key": key})
        for r in out:
            if r.status == 200:
                served[key] += 1
        return Counter(r.status for r in out), out

    # Warm up: both sidecars hold leases for both keys.
    send("tg_open_key", 400)
    send("tg_closed_key", 400)
    collector = cluster.collectors[0]["process"]
    collector.popen.send_signal(19)  # SIGSTOP: the collector is there but answers nothing
    try:
        # Fail-closed: what the leases still hold is served, then 503 with Retry-After.
        statuses, out = send("tg_closed_key", 3000)
        assert statuses[503] > 0 and set(statuses) <= {200, 503}, statuses
        refused = [r for r in out if r.status == 503]
        assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
        assert all(b"collector_unreachable" in r.body for r in refused)
        # Fail-open: everything is served and spooled for later.
        statuses, _ = send("tg_open_key", 3000)
        assert statuses == {200: 3000}, statuses
    finally:
        collector.popen.send_signal(18)  # SIGCONT
    for key in ("tg_open_key", "tg_closed_key"):
        wait_until(lambda: cluster.redis_calls(key_id(key)) == served[key], timeout=60,
                   what=f"Redis counts exactly what {key} was served")


def test_local_check_api_uses_the_gate_and_never_spends(cluster):
    start_fleet(cluster, "  tiny:\n    features:\n      api_call: {limit: 5, reset: day}\n",
                "  - {key: tg_tiny_key, plan: tiny, name: tiny}", sidecars=1)
    sidecar = cluster.sidecars[0]
    check = f"http://127.0.0.1:{sidecar['admin']}/v1/check"
    for _ in range(3):
        answer = requests.post(check, json={"key": "tg_tiny_key", "feature": "api_call"}, timeout=5).json()
        assert answer["allowed"] is True and answer["balance"] == 5 and answer["limit"] == 5, answer
    responses = loadgen.run(targets(cluster), total=8, connections=1, path="/v1/echo", headers={"X-API-Key": "tg_tiny_key"})
    assert [r.status for r in responses] == [200] * 5 + [429] * 3
    answer = requests.post(check, json={"key": "tg_tiny_key", "feature": "api_call"}, timeout=5).json()
    assert answer["allowed"] is False and answer["reason"] == "quota_exhausted" and answer["retry_after"] > 0, answer
    wait_until(lambda: cluster.redis_calls(key_id("tg_tiny_key")) == 5, timeout=30, what="5 counted")


def test_steady_traffic_almost_never_waits_for_the_collector(cluster):
    """With quota to spare, leases are renewed in the background: once each sidecar holds its first
    lease (the warm-up, where the first calls wait for it), decisions do not wait."""
    start_fleet(cluster, "  roomy:\n    features:\n      api_call: {limit: 10000000, reset: day}\n",
                "  - {key: tg_roomy_key, plan: roomy, name: roomy}")

    def totals():
        return [sum(metric(cluster, s, name) for s in cluster.sidecars) for name in (
            "tollgate_sidecar_quota_decisions_total", "tollgate_sidecar_quota_round_trips_total",
            "tollgate_sidecar_lease_requests_total")]
    warm = loadgen.run(targets(cluster), total=400, connections=64, path="/v1/echo", headers={"X-API-Key": "tg_roomy_key"})
    assert Counter(r.status for r in warm) == {200: 400}
    wait_until(lambda: totals()[0] >= 400, timeout=5, what="the warm-up's decisions counted")
    before = totals()
    responses = loadgen.run(targets(cluster), total=40_000, connections=64, path="/v1/echo",
                            headers={"X-API-Key": "tg_roomy_key"})
    assert Counter(r.status for r in responses) == {200: 40_000}
    # Decision counts reach /metrics in batches (every 512 decisions or 100 ms).
    wait_until(lambda: totals()[0] - before[0] >= 40_000, timeout=5, what="40,000 decisions counted")
    decisions, waited, leases = (after - b for after, b in zip(totals(), before))
    assert decisions == 40_000, (decisions, before)
    print(f"\nsteady traffic: {int(waited)} of {int(decisions)} decisions waited for a round trip "
          f"({100 * waited / decisions:.3f}%), {int(leases)} lease requests")
    assert waited / decisions < 0.001
    wait_until(lambda: cluster.redis_calls(key_id("tg_roomy_key")) == 40_400, timeout=30, what="40,400 counted")


def test_a_key_that_cannot_be_checked_gets_503_not_401(cluster):
    """No collector answers: a new key is neither admitted nor called unknown."""
    from conftest import free_port
    cluster.config(BLOCK_PLANS, "  - {key: tg_block_key, plan: daily, name: blocked}")
    cluster.start_upstream()
    cluster.collectors.append({"router": free_port(), "publish": free_port(), "http": free_port(), "name": "absent"})
    sidecar = cluster.start_sidecar()
    r = requests.get(f"http://127.0.0.1:{sidecar['listen']}/v1/echo", headers={"X-API-Key": "tg_block_key"}, timeout=10)
    assert r.status_code == 503 and r.json()["error"] == "key_lookup_timeout", (r.status_code, r.text)


def test_a_key_never_seen_costs_one_round_trip(cluster):
    """The key's lookup brings its first lease: the first call decides without a second trip."""
    start_fleet(cluster, BLOCK_PLANS, "  - {key: tg_block_key, plan: daily, name: blocked}", sidecars=1)
    sidecar = cluster.sidecars[0]
    r = requests.get(f"http://127.0.0.1:{sidecar['listen']}/v1/echo", headers={"X-API-Key": "tg_block_key"}, timeout=10)
    assert r.status_code == 200 and r.headers["ratelimit-policy"] == '"api_call";q=10000;w=86400'
    # No decision waited: the key lookup (the one round trip) brought the lease. A lease request
    # may follow in the background, to top the slice up.
    assert metric(cluster, sidecar, "tollgate_sidecar_quota_round_trips_total") == 0
    assert metric(cluster, sidecar, "tollgate_sidecar_lease_units_granted_total") > 0
    leases = cluster.redis.hgetall(next(cluster.redis.scan_iter(match=f"tg:{{{key_id('tg_block_key')}}}:l:api_call:*")))
    assert any(k.startswith("h:sidecar-1|") and int(v) > 0 for k, v in leases.items()), leases
