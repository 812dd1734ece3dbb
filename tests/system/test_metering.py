"""Issue 3 acceptance: every metered call is counted in Redis exactly once, per key, across a
collector SIGKILL and restart, and with two collectors when one dies."""
import hashlib
import itertools
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import wait_until

KEYS = [f"tg_system_key_{i:02d}" for i in range(50)]
PLANS = """
  bulk:
    features:
      api_call: {limit: 100000000, reset: day, mode: optimistic, when_unreachable: fail_open}
"""
KEYS_YAML = "\n".join(f"  - {{key: {k}, plan: bulk, name: k{i:02d}}}" for i, k in enumerate(KEYS))


def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()


def drive(cluster, total, workers=32, on_progress=None):
    """Sends `total` requests round-robin over keys and sidecars; returns the per-key tally of 200s."""
    jobs = list(itertools.islice(itertools.cycle(
        [(k, s) for k in KEYS for s in range(len(cluster.sidecars))]), total))
    tally = Counter()
    lock = threading.Lock()
    local = threading.local()
    done = [0]

    def send(job):
        key, sidecar = job
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        port = cluster.sidecars[sidecar]["listen"]
        response = session.get(f"http://127.0.0.1:{port}/v1/echo", headers={"X-API-Key": key}, timeout=10)
        assert response.status_code == 200, f"{response.status_code} {response.text[:200]}"
        with lock:
            tally[key] += 1
            done[0] += 1
            if on_progress:
                on_progress(done[0])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(send, jobs):
            pass
    return tally


def assert_redis_matches(cluster, tally, timeout=60):
    def converged():
        return all(cluster.redis_calls(key_id(k)) == tally[k] for k in KEYS)
    try:
        wait_until(converged, timeout=timeout, interval=0.2, what="Redis counts equal to what was sent")
    finally:
        counted = {k: cluster.redis_calls(key_id(k)) for k in KEYS}
        wrong = {k: (counted[k], tally[k]) for k in KEYS if counted[k] != tally[k]}
        assert not wrong, f"keys whose Redis count != sent (counted, sent): {wrong}"
    assert sum(tally.values()) == sum(cluster.redis_calls(key_id(k)) for k in KEYS)


def start_fleet(cluster, collectors=1, sidecars=2):
    cluster.config(PLANS, KEYS_YAML)
    cluster.start_redis(appendonly=True)
    cluster.start_upstream()
    for _ in range(collectors):
        cluster.start_collector()
    for _ in range(sidecars):
        cluster.start_sidecar()


def test_twenty_thousand_requests_over_fifty_keys_are_counted_exactly(cluster):
    start_fleet(cluster)
    tally = drive(cluster, 20_000)
    assert sum(tally.values()) == 20_000
    assert_redis_matches(cluster, tally)
    # The usage API reads the same records.
    usage = requests.get(f"http://127.0.0.1:{cluster.collectors[0]['http']}/v1/usage/{key_id(KEYS[7])}", timeout=5).json()
    api_call = next(f for f in usage["features"] if f["feature"] == "api_call")
    assert api_call["used"] == tally[KEYS[7]]


def test_counts_stay_exact_when_the_collector_is_killed_and_restarted(cluster):
    start_fleet(cluster)
    collector = cluster.collectors[0]
    killed = threading.Event()

    def chaos(done):
        if done == 6_000 and not killed.is_set():
            killed.set()
            collector["process"].kill()  # SIGKILL mid-stream: unacked batches stay in the spools

    tally = drive(cluster, 20_000, on_progress=chaos)
    assert killed.is_set()
    cluster.start_collector(index=0)
    assert_redis_matches(cluster, tally)


def test_counts_stay_exact_with_two_collectors_when_one_dies(cluster):
    start_fleet(cluster, collectors=2)
    killed = threading.Event()

    def chaos(done):
        if done == 8_000 and not killed.is_set():
            killed.set()
            cluster.collectors[0]["process"].kill()

    tally = drive(cluster, 20_000, on_progress=chaos)
    assert killed.is_set()
    assert_redis_matches(cluster, tally)


def test_upstream_units_are_counted_and_never_reach_the_client(cluster):
    start_fleet(cluster, sidecars=1)
    port = cluster.sidecars[0]["listen"]
    key = KEYS[0]
    sent_tokens = 0
    with requests.Session() as session:
        for tokens in (532, 1, 999, 40_000):
            # The demo upstream echoes X-Demo-Units back as its Tollgate-Units response header.
            response = session.get(f"http://127.0.0.1:{port}/units",
                                   headers={"Authorization": f"Bearer {key}", "X-Demo-Units": f"tokens={tokens}"},
                                   timeout=5)
            assert response.status_code == 200
            assert "tollgate-units" not in {h.lower() for h in response.headers}
            sent_tokens += tokens

    def tokens_counted():
        total = 0
        # Units the upstream reports beside the call's own meter land as extra units (x:<name>)
        # on the call's feature.
        for name in cluster.redis.scan_iter(match=f"tg:{{{key_id(key)}}}:u:api_call:*"):
            total += int(cluster.redis.hget(name, "x:tokens") or 0)
        return total == sent_tokens
    wait_until(tokens_counted, timeout=30, what="tokens from Tollgate-Units counted")


def test_unknown_key_is_refused_and_not_counted(cluster):
    start_fleet(cluster, sidecars=1)
    port = cluster.sidecars[0]["listen"]
    response = requests.get(f"http://127.0.0.1:{port}/v1/echo", headers={"X-API-Key": "tg_not_a_key_at_all"}, timeout=5)
    assert response.status_code == 401
    assert response.json()["error"] == "unknown_api_key"
    missing = requests.get(f"http://127.0.0.1:{port}/v1/echo", timeout=5)
    assert missing.status_code == 401
    assert not list(cluster.redis.scan_iter(match=f"tg:{{{key_id('tg_not_a_key_at_all')}}}:u:*"))
