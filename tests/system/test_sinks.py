"""Issue 6 (sinks): the Stripe sink sends every billable unit exactly once, across a storm of 500s
and 429s from Stripe (the local stand-in in tools/stripe) and a collector SIGKILLed mid-stream and
restarted; the JSONL audit log has a line for every batch Redis holds. Bad sink config exits 78."""
import hashlib
import itertools
import json
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from conftest import ROOT, Process, free_port, wait_until

SECRET_ENV = "TOLLGATE_TEST_STRIPE_KEY"
SECRET = "sk_test_tollgate_system_0001"
BULK = [f"tg_sink_key_{i:02d}" for i in range(8)]
OVER = [f"tg_sink_over_{i}" for i in range(2)]
PLANS = """
  bulk:
    features:
      api_call: {limit: 100000000, reset: day, mode: optimistic, when_unreachable: fail_open}
  over:
    features:
      api_call:
        limit: 60
        reset: day
        when_unreachable: fail_open
        policy: {overage: {price: "0.001", per: 1}}
"""
# Customers: keys 0-3 and the overage keys carry stripe_customer in the registry, keys 4-6 are
# mapped by name in the sink's config, key 7 has no customer (its usage is never sent).
KEYS_YAML = "\n".join(
    [f"  - {{key: {k}, plan: bulk, name: b{i}" + (f", stripe_customer: cus_bulk{i}" if i < 4 else "") + "}"
     for i, k in enumerate(BULK)]
    + [f"  - {{key: {k}, plan: over, name: o{i}, stripe_customer: cus_over{i}}}" for i, k in enumerate(OVER)])
X402 = """
x402:
  network: eip155:84532
  asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
  pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
  extra: {name: USDC, version: "2"}
  facilitator: {url: "http://127.0.0.1:9"}
"""
OVER_LIMIT = 60
CUSTOMER = {**{BULK[i]: f"cus_bulk{i}" for i in range(4)}, **{BULK[i]: f"cus_mapped{i}" for i in range(4, 7)},
            **{k: f"cus_over{i}" for i, k in enumerate(OVER)}}


def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()


def sink_settings(stripe_url, audit_path):
    return f"""  sinks:
    queue_capacity: 100000
    audit: {{path: {audit_path}, max_bytes: 1073741824, files: 2}}
    stripe:
      base_url: {stripe_url}
      secret_key_env: {SECRET_ENV}
      meters:
        api_call: {{event_name: api_calls, overage_event_name: api_overage}}
      customers: {{b4: cus_mapped4, b5: cus_mapped5, b6: cus_mapped6}}
      flush_interval_ms: 200
      retry_initial_ms: 20
      retry_max_ms: 400
      max_attempts: 6
      claim_ttl_ms: 3000
      rescan_interval_seconds: 2
      max_requests_per_second: 200
"""


def start_stripe(cluster):
    port = free_port()
    proc = Process("stripe", [sys.executable, ROOT / "tools" / "stripe" / "stripe_server.py",
                              "--listen", f"127.0.0.1:{port}", "--secret-key", SECRET], cluster.dir)
    cluster.processes.append(proc)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{url}/healthz", timeout=1).ok, what="fake Stripe ready")
    return url


def drive(cluster, total, workers=24, on_progress=None):
    """Round-robin over keys, sidecars and paths (1 in 10 calls answers 500, 1 in 10 answers 404)."""
    paths = ["/v1/echo"] * 8 + ["/status/500", "/status/404"]
    jobs = list(itertools.islice(zip(itertools.cycle(BULK + OVER), itertools.cycle(range(len(cluster.sidecars))),
                                     itertools.cycle(paths)), total))
    local = threading.local()
    done = [0]
    lock = threading.Lock()

    def send(job):
        key, sidecar, path = job
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        port = cluster.sidecars[sidecar]["listen"]
        response = session.get(f"http://127.0.0.1:{port}{path}", headers={"X-API-Key": key}, timeout=10)
        assert response.status_code in (200, 404, 500), (response.status_code, response.text[:200])
        with lock:
            done[0] += 1
            if on_progress:
                on_progress(done[0])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(send, jobs))


def redis_billable(cluster):
    """(customer, event name, period) -> units, from the counters enforcement uses."""
    totals = Counter()
    for key in BULK + OVER:
        for name in cluster.redis.scan_iter(match=f"tg:{{{key_id(key)}}}:u:api_call:*"):
            period = name.rsplit(":", 1)[1]
            counters = cluster.redis.hgetall(name)
            if key in CUSTOMER:
                totals[(CUSTOMER[key], "api_calls", period)] += int(counters.get("s2xx", 0))
                if key in OVER:  # overage as the usage API counts it: units past the limit and credits
                    over = int(counters.get("units", 0)) - OVER_LIMIT - int(counters.get("credit", 0))
                    totals[(CUSTOMER[key], "api_overage", period)] += max(0, over)
    return +totals


def stripe_accepted(url):
    answer = requests.get(f"{url}/_events", timeout=5).json()
    totals = Counter()
    for event in answer["events"]:
        period = "d" + time.strftime("%Y%m%d", time.gmtime(event["timestamp"]))
        totals[(event["payload"]["stripe_customer_id"], event["event_name"], period)] += int(event["payload"]["value"])
    return totals, answer


def audit_lines(path):
    lines = []
    for candidate in (f"{path}.2", f"{path}.1", path):
        if Path(candidate).exists():
            lines += [json.loads(line) for line in Path(candidate).read_text().splitlines()]
    return lines


def test_stripe_gets_every_billable_unit_once_across_500s_and_a_collector_kill(cluster, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    stripe = start_stripe(cluster)
    cluster.config(PLANS, KEYS_YAML, X402)
    cluster.start_redis(appendonly=True)
    cluster.start_upstream()
    audit = cluster.dir / "audit.jsonl"
    collector = cluster.start_collector(settings=sink_settings(stripe, audit))
    cluster.start_sidecar()
    cluster.start_sidecar()

    # A storm: the next 60 meter events get 500, then 429s with Retry-After.
    requests.post(f"{stripe}/_control", json={"fail_next": 60, "status": 500}, timeout=5).raise_for_status()
    killed = threading.Event()

    def chaos(done):
        if done == 2_500 and not killed.is_set():
            killed.set()
            collector["process"].kill()   # SIGKILL: pending ranges and unacked batches stay where they are

    drive(cluster, 5_000, on_progress=chaos)
    assert killed.is_set()
    requests.post(f"{stripe}/_control", json={"fail_next": 10, "status": 429, "retry_after": 1}, timeout=5).raise_for_status()
    cluster.start_collector(index=0)
    drive(cluster, 2_000)

    # Redis is the truth: wait until what Stripe accepted equals it, never exceeding it on the way.
    def converged():
        accepted, _ = stripe_accepted(stripe)
        expected = redis_billable(cluster)
        over = {k: (accepted[k], expected[k]) for k in accepted if accepted[k] > expected[k]}
        assert not over, f"Stripe got more than Redis counted (accepted, counted): {over}"
        return accepted == expected and sum(expected.values()) > 0
    try:
        wait_until(converged, timeout=90, interval=0.3, what="Stripe totals equal to Redis")
    finally:
        accepted, answer = stripe_accepted(stripe)
        expected = redis_billable(cluster)
        print(f"stripe: {len(answer['events'])} events, {answer['requests']} requests, {answer['failed']} failed on purpose, "
              f"{answer['duplicates']} duplicates; billable units {sum(expected.values())}")
    assert accepted == expected
    assert answer["failed"] == 70, answer["failed"]
    # Only 2xx calls are billed; non-2xx were counted but not sent; the key without a customer sent nothing.
    assert all(customer != "cus_bulk7" for customer, _, _ in accepted)
    calls = sum(int(cluster.redis.hget(n, "calls")) for k in BULK + OVER
                for n in cluster.redis.scan_iter(match=f"tg:{{{key_id(k)}}}:u:api_call:*"))
    assert calls == 7_000
    assert sum(v for (_, meter, _), v in accepted.items() if meter == "api_calls") < 7_000
    assert sum(v for (_, meter, _), v in accepted.items() if meter == "api_overage") > 0
    # Metrics say what happened.
    metrics = requests.get(f"http://127.0.0.1:{collector['http']}/metrics", timeout=5).text
    assert "tollgate_collector_stripe_events_sent_total" in metrics
    assert "tollgate_collector_stripe_retries_total" in metrics

    # The audit log: every line parses, and every batch Redis holds has a line, with its
    # sidecar, epoch and sequence; the aggregates add up to the counters.
    def audit_complete():
        markers = set()
        for key in BULK + OVER:
            for name in cluster.redis.scan_iter(match=f"tg:{{{key_id(key)}}}:b:*"):
                sidecar, epoch, seq = name.split("}:b:", 1)[1].rsplit(":", 2)
                markers.add((sidecar, int(epoch), int(seq), key_id(key)))
        lines = audit_lines(audit)
        logged = set()
        new_lines = Counter()
        totals = defaultdict(dict)
        for line in lines:
            if line["type"] != "batch":
                continue
            for aggregate in line["aggregates"]:
                ident = (line["sidecar"], line["epoch"], line["seq"], aggregate["key"])
                logged.add(ident)
                new_lines[ident] += aggregate["new"]
                totals[aggregate["key"]][ident + (aggregate["period"],)] = aggregate["calls"]
        assert all(n <= 1 for n in new_lines.values()), "a batch was logged as newly counted twice"
        redis_calls = {key_id(k): cluster.redis_calls(key_id(k)) for k in BULK + OVER}
        return markers == logged and all(sum(totals[k].values()) == redis_calls[k] for k in redis_calls)
    wait_until(audit_complete, timeout=30, interval=0.3, what="an audit line for every batch in Redis")
    batch_lines = [line for line in audit_lines(audit) if line["type"] == "batch"]
    assert all({"sidecar", "epoch", "seq", "outcome", "aggregates", "at_ms"} <= set(line) for line in batch_lines)
    print(f"audit: {len(batch_lines)} batch lines, {sum(line['outcome'] != 'applied' for line in batch_lines)} not applied now")


def run_check(cluster, stripe_section, env=None):
    path = cluster.dir / "bad.yaml"
    path.write_text(f"""
collector:
  sinks:
    stripe:
{stripe_section}
plans:
  free:
    features:
      api_call: {{limit: 10, reset: day}}
""")
    results = []
    for command in ("check-config", "collector"):
        results.append(subprocess.run([str(cluster.bin), command, "-c", str(path)], capture_output=True, text=True,
                                      timeout=30, env=env))
    return results


def test_bad_sink_config_is_refused_with_exit_78(cluster):
    env = {"PATH": "/usr/bin:/bin", SECRET_ENV: SECRET}
    for result in run_check(cluster, f"""      base_url: "ftp://stripe.example"
      secret_key_env: {SECRET_ENV}
      meters: {{api_call: api_calls}}""", env):
        assert result.returncode == 78, result
        assert "collector.sinks.stripe.base_url" in result.stderr and "http:// or https://" in result.stderr, result.stderr
    for result in run_check(cluster, """      secret_key_env: TOLLGATE_TEST_NOT_SET_ANYWHERE
      meters: {api_call: api_calls}""", {"PATH": "/usr/bin:/bin"}):
        assert result.returncode == 78, result
        assert "collector.sinks.stripe.secret_key_env" in result.stderr
        assert "TOLLGATE_TEST_NOT_SET_ANYWHERE is not set" in result.stderr, result.stderr
    for result in run_check(cluster, """      meters: {api_call: api_calls}""", env):
        assert result.returncode == 78, result
        assert "secret_key_env: is required" in result.stderr, result.stderr
