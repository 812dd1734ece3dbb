"""Anonymous callers (issue 3's principal, issue 4's enforcement): a sidecar configured with an
anonymous plan meters callers without a key by client address, on that plan, and the fleet
enforces the plan's quota for them exactly as for a key. Their usage travels in the same batches
as keyed usage, and every count lands in Redis.
"""
import time
from collections import Counter

import requests

import loadgen
from conftest import wait_until
from test_quota import check_429, key_id

TOKEN = "system-anonymous-admin-token-0123"
PLANS = """
  public:
    features:
      api_call: {limit: 300, reset: day}
  paid:
    features:
      api_call: {limit: 100000, reset: day}
"""
KEYS = "  - {key: tg_anon_test_keyed, plan: paid, name: keyed}"
ANON_ID = "anon.public.127.0.0.1"


def collector_url(cluster, path):
    return f"http://127.0.0.1:{cluster.collectors[0]['http']}{path}"


def test_anonymous_callers_get_their_plan_fleet_wide_and_are_counted(cluster, monkeypatch):
    monkeypatch.setenv("TOLLGATE_TEST_ADMIN_TOKEN", TOKEN)
    cluster.config(PLANS, KEYS)
    cluster.start_redis()
    cluster.start_upstream()
    cluster.start_collector(settings="  admin_token_env: TOLLGATE_TEST_ADMIN_TOKEN")
    for _ in range(2):
        cluster.start_sidecar(settings="  anonymous_plan: public")
    targets = [("127.0.0.1", s["listen"]) for s in cluster.sidecars]

    # Anonymous and keyed calls interleaved over both sidecars: they share batches.
    def request(number):
        return ("/v1/echo", {"X-API-Key": "tg_anon_test_keyed"} if number % 2 else {})

    responses = loadgen.run(targets, total=1_000, connections=32, requests=request)
    keyed = Counter(r.status for r in responses if r.number % 2)
    anonymous = Counter(r.status for r in responses if not r.number % 2)
    assert keyed == {200: 500}, keyed
    assert anonymous == {200: 300, 429: 200}, anonymous
    for r in responses:
        if not r.number % 2 and r.status == 429:
            check_429(r, "api_call", 300, 86_400)
    served_by = Counter(r.target for r in responses if not r.number % 2 and r.status == 200)
    assert len(served_by) == 2, served_by

    wait_until(lambda: cluster.redis_calls(ANON_ID) == 300 and cluster.redis_calls(key_id("tg_anon_test_keyed")) == 500,
               timeout=30, what="Redis counts 300 anonymous and 500 keyed calls")
    time.sleep(0.3)
    assert cluster.redis_calls(ANON_ID) == 300
    assert cluster.redis_calls(key_id("tg_anon_test_keyed")) == 500
    text = requests.get(collector_url(cluster, "/metrics"), timeout=5).text
    assert 'tollgate_collector_batches_total{result="rejected"}' not in text or \
        'tollgate_collector_batches_total{result="rejected"} 0' in text, "a batch was rejected"

    # The usage API answers for the anonymous id from its plan.
    report = requests.get(collector_url(cluster, f"/v1/usage/{ANON_ID}"), timeout=5,
                          headers={"Authorization": f"Bearer {TOKEN}"}).json()
    api = next(f for f in report["features"] if f["feature"] == "api_call")
    assert (api["used"], api["limit"], api["remaining"]) == (300, 300, 0), report
    assert report["key"]["plan"] == "public", report

    # A change to the anonymous plan reaches the anonymous callers on every sidecar.
    response = requests.put(collector_url(cluster, "/v1/admin/plans/public"), timeout=5,
                            headers={"Authorization": f"Bearer {TOKEN}"},
                            json={"features": {"api_call": {"limit": 340, "reset": "day"}}})
    assert response.status_code == 200, response.text
    polls = []

    def poll(sidecar):
        answer = requests.get(f"http://127.0.0.1:{sidecar['listen']}/v1/echo", timeout=5)
        polls.append(answer.status_code)
        return answer.headers.get("ratelimit-policy") == '"api_call";q=340;w=86400'

    wait_until(lambda: all([poll(s) for s in cluster.sidecars]), timeout=10,
               what="every sidecar enforces the raised anonymous limit")
    more = loadgen.run(targets, total=100, connections=8, path="/v1/echo")
    statuses = Counter(polls) + Counter(r.status for r in more)
    # Exactly the 40 new units are served, the polls included; the rest are refused.
    assert statuses[200] == 40 and statuses[429] == len(polls) + 100 - 40, statuses
    wait_until(lambda: cluster.redis_calls(ANON_ID) == 340, timeout=30, what="Redis counts 340 anonymous calls")
    time.sleep(0.3)
    assert cluster.redis_calls(ANON_ID) == 340


def test_without_an_anonymous_plan_a_call_without_a_key_is_refused(cluster):
    cluster.config(PLANS, KEYS)
    cluster.start_redis()
    cluster.start_upstream()
    cluster.start_collector()
    sidecar = cluster.start_sidecar()
    response = requests.get(f"http://127.0.0.1:{sidecar['listen']}/v1/echo", timeout=5)
    assert response.status_code == 401, response.text
    time.sleep(0.3)
    assert cluster.redis_calls(ANON_ID) == 0
