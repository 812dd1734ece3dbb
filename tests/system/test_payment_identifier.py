"""Issue 5: x402 `payment-identifier` idempotency end to end. The official x402 Python SDK appends an
id to its payment (`append_payment_identifier_to_extensions`); a retry of that exact payment on any
sidecar gets the first answer back without the facilitator, the upstream, a settlement, a credit or
a metered call; the id with another payment gets 409, and so does a retry while the first attempt
is still in flight; an attempt the upstream failed frees the id for the next one."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from eth_account import Account
from x402 import x402ClientSync
from x402.extensions.payment_identifier import append_payment_identifier_to_extensions
from x402.http import x402HTTPClientSync
from x402.mechanisms.evm.exact import register_exact_evm_client

from conftest import free_port, wait_until
from test_payments import decode_header, key_id, start_facilitator_and_config

PLANS = """
  payg:
    features:
      api_call:
        limit: 1
        reset: day
        policy: {payment_required: {price: "0.01", buys: call}}
  roomy:
    features:
      api_call: {limit: 100000, reset: day}
  pack:
    features:
      api_call:
        limit: 1
        reset: day
        policy: {payment_required: {price: "0.01", buys: {units: 2}}}
"""
KEY = "tg_idempotent_payer_01"
PROBE = "tg_idempotent_probe_01"
PACKER = "tg_idempotent_packer_1"
KEYS = (f"  - {{key: {KEY}, plan: payg, name: payer}}\n  - {{key: {PROBE}, plan: roomy, name: probe}}\n"
        f"  - {{key: {PACKER}, plan: pack, name: packer}}")


class CountingUpstream:
    """The service behind the sidecars: counts every call per path and says the count in its body.
    `/slow/<ms>` answers after a delay, `/flaky/<name>` fails with 500 the first time only."""

    def __init__(self):
        self.counts = {}
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                with upstream.lock:
                    upstream.counts[self.path] = n = upstream.counts.get(self.path, 0) + 1
                status = 200
                if self.path.startswith("/slow/"):
                    time.sleep(int(self.path.rsplit("/", 1)[1]) / 1000)
                if self.path.startswith("/flaky/") and n == 1:
                    status = 500
                body = json.dumps({"path": self.path, "n": n}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Upstream-Call", str(n))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def sdk_payment_with_id(challenge, payment_id, account=None):
    """The SDK signs a v2 payment for the challenge with `payment_id` appended to the extensions the
    server declared (the SDK appends it only if the server advertised the extension)."""
    client = x402ClientSync()
    register_exact_evm_client(client, account or Account.create())
    http = x402HTTPClientSync(client)
    required = http.get_payment_required_response(lambda name: challenge.headers.get(name), challenge.content)
    assert required.x402_version == 2
    extensions = dict(required.extensions or {})
    append_payment_identifier_to_extensions(extensions, payment_id)
    assert extensions["payment-identifier"]["info"] == {"required": False, "id": payment_id}, extensions
    payload = client.create_payment_payload(required, extensions=extensions)
    return http.encode_payment_signature_header(payload)


def test_payment_identifier_replays_conflicts_and_frees(cluster):
    upstream = CountingUpstream()
    try:
        run(cluster, upstream)
    finally:
        upstream.stop()


def run(cluster, upstream):
    facilitator = start_facilitator_and_config(cluster, PLANS, KEYS)
    cluster.start_redis()
    cluster.upstream_port = upstream.port
    cluster.start_collector()
    a = cluster.start_sidecar()
    b = cluster.start_sidecar()
    host = f"127.0.0.1:{a['listen']}"  # both sidecars see one Host, as behind a load balancer
    kid = key_id(KEY)

    def get(sidecar, path, headers=None, key=KEY):
        return requests.get(f"http://127.0.0.1:{sidecar['listen']}{path}",
                            headers={"X-API-Key": key, "Host": host, **(headers or {})}, timeout=30)

    def settlements():
        return len(requests.get(f"{facilitator}/_settlements", timeout=5).json()["settlements"])

    def counters():
        period = next(iter(cluster.redis.scan_iter(match=f"tg:{{{kid}}}:u:api_call:*")))
        fields = cluster.redis.hgetall(period)
        return int(fields.get("calls", 0)), int(fields.get("credit", 0)), int(fields.get("pay_n", 0))

    probes = {"n": 0}

    def barrier(sidecar):
        """A call of another key through `sidecar`, waited for in Redis: anything that sidecar
        metered before it has been counted by then."""
        probes["n"] += 1
        assert get(sidecar, "/probe", key=PROBE).status_code == 200
        wait_until(lambda: cluster.redis_calls(key_id(PROBE)) == probes["n"], timeout=30, what="probe counted")

    assert get(a, "/v1/echo").status_code == 200  # the one free call
    challenge = get(a, "/v1/echo")
    assert challenge.status_code == 402
    declared = decode_header(challenge.headers["payment-required"])["extensions"]["payment-identifier"]
    assert declared["info"] == {"required": False} and declared["schema"]["properties"]["id"]["minLength"] == 16

    # 1. Paid once on sidecar 1: served, settled, credited.
    payment = sdk_payment_with_id(challenge, "pay_first_0123456789abcdef")
    paid = get(a, "/v1/echo", payment)
    assert paid.status_code == 200, paid.text
    assert paid.json() == {"path": "/v1/echo", "n": 2}
    response = decode_header(paid.headers["payment-response"])
    assert response["success"] is True and paid.headers["cache-control"] == "private"
    barrier(a)
    before = counters()
    assert before == (2, 1, 1), before  # the free call and the paid one; one credit; one payment
    assert settlements() == 1 and cluster.redis.xlen(f"tg:{{{kid}}}:settlements") == 1

    # 2. The identical payment on sidecar 2, then on sidecar 1: the first answer again, nothing else.
    for sidecar in (b, a):
        retry = get(sidecar, "/v1/echo", payment)
        assert retry.status_code == 200, retry.text
        assert retry.content == paid.content and retry.headers["x-upstream-call"] == "2"
        assert retry.headers["payment-response"] == paid.headers["payment-response"]
        assert retry.headers["cache-control"] == "private"
        assert retry.headers["content-type"] == "application/json"
    head = requests.head(f"http://127.0.0.1:{b['listen']}/v1/echo", headers={"X-API-Key": KEY, "Host": host, **payment}, timeout=30)
    assert head.status_code == 200 and head.headers["payment-response"] == paid.headers["payment-response"]
    barrier(b)
    barrier(a)
    assert upstream.count("/v1/echo") == 2
    assert settlements() == 1 and cluster.redis.xlen(f"tg:{{{kid}}}:settlements") == 1
    assert counters() == before, counters()
    # Still out of quota: the replays spent nothing and bought nothing.
    assert get(b, "/v1/echo").status_code == 402

    # 3. The same id with another payment (a new signature and nonce): 409, not served, not paid.
    other = sdk_payment_with_id(get(a, "/v1/echo"), "pay_first_0123456789abcdef")
    conflict = get(b, "/v1/echo", other)
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["error"] == "payment_identifier_conflict" and "n" not in conflict.json()
    assert upstream.count("/v1/echo") == 2 and settlements() == 1

    # 4. A retry while the first attempt is still at the (slow) upstream: 409 with Retry-After, once served.
    slow_path = "/slow/2500"
    slow_payment = sdk_payment_with_id(get(a, slow_path), "pay_slow_0123456789abcdef")
    first = {}
    thread = threading.Thread(target=lambda: first.update(r=get(a, slow_path, slow_payment)))
    thread.start()
    wait_until(lambda: upstream.count(slow_path) == 1, timeout=20, what="the slow call at the upstream")
    early = get(b, slow_path, slow_payment)
    thread.join(30)
    assert early.status_code == 409, early.text
    assert early.json()["error"] == "payment_in_progress" and early.headers["retry-after"] == "1"
    assert first["r"].status_code == 200 and first["r"].json() == {"path": slow_path, "n": 1}
    late = get(b, slow_path, slow_payment)
    assert late.status_code == 200 and late.content == first["r"].content
    assert upstream.count(slow_path) == 1 and settlements() == 2

    # 5. The upstream fails the first attempt: nothing settled, the id is free; the same payment
    # later is processed normally (upstream called again, settled once).
    flaky = "/flaky/one"
    flaky_payment = sdk_payment_with_id(get(a, flaky), "pay_flaky_0123456789abcdef")
    failed = get(a, flaky, flaky_payment)
    assert failed.status_code == 500 and "payment-response" not in failed.headers
    assert settlements() == 2
    again = get(b, flaky, flaky_payment)
    assert again.status_code == 200, again.text
    assert again.json() == {"path": flaky, "n": 2} and decode_header(again.headers["payment-response"])["success"] is True
    assert upstream.count(flaky) == 2 and settlements() == 3
    assert cluster.redis.xlen(f"tg:{{{kid}}}:settlements") == 3

    # 6. A malformed id is refused with its reason (a fresh challenge), never served.
    junk_challenge = get(a, "/v1/echo")
    junk = sdk_payment_with_id(junk_challenge, "pay_junk_0123456789abcdef")
    (name, value), = junk.items()
    document = json.loads(__import__("base64").b64decode(value))
    document["extensions"]["payment-identifier"]["info"]["id"] = "not ok: spaces"
    junk = {name: __import__("base64").b64encode(json.dumps(document).encode()).decode()}
    refused = get(a, "/v1/echo", junk)
    assert refused.status_code == 402 and refused.json()["error"] == "invalid_payment_identifier", refused.text
    assert upstream.count("/v1/echo") == 2 and settlements() == 3

    # The metrics saw it all.
    metrics = requests.get(f"http://127.0.0.1:{cluster.collectors[0]['http']}/metrics", timeout=5).text
    for result in ("replayed", "conflict", "in_progress", "kept", "invalid"):
        assert f'tollgate_collector_payment_identifier_total{{result="{result}"}}' in metrics, result
    sidecar_metrics = requests.get(f"http://127.0.0.1:{b['admin']}/metrics", timeout=5).text
    assert 'tollgate_sidecar_paid_calls_total{outcome="replayed"} 3' in sidecar_metrics  # two GETs and the HEAD


def test_a_retry_is_replayed_even_while_the_key_has_quota_and_spends_none(cluster):
    """A pack leaves the key with quota after the paid call: a retry of the payment must still get
    the kept answer (looked up before the quota gate), not be served and metered as a new call."""
    upstream = CountingUpstream()
    try:
        start_facilitator_and_config(cluster, PLANS, KEYS)
        cluster.start_redis()
        cluster.upstream_port = upstream.port
        cluster.start_collector()
        a = cluster.start_sidecar()
        b = cluster.start_sidecar()
        host = f"127.0.0.1:{a['listen']}"

        def get(sidecar, headers=None, key=PACKER, path="/v1/echo"):
            return requests.get(f"http://127.0.0.1:{sidecar['listen']}{path}",
                                headers={"X-API-Key": key, "Host": host, **(headers or {})}, timeout=30)

        assert get(a).status_code == 200
        challenge = get(a)
        assert challenge.status_code == 402
        payment = sdk_payment_with_id(challenge, "pay_pack_0123456789abcdef")
        paid = get(a, payment)
        assert paid.status_code == 200 and paid.json()["n"] == 2
        # The pack reached sidecar 2: it would admit a plain call now.
        kid = key_id(PACKER)
        wait_until(lambda: cluster.redis_calls(kid) == 2, timeout=30, what="paid call counted")
        for sidecar in (b, a):
            retry = get(sidecar, payment)
            assert retry.status_code == 200 and retry.content == paid.content, retry.text
            assert retry.headers["payment-response"] == paid.headers["payment-response"]
        assert upstream.count("/v1/echo") == 2
        # Both units of the pack are still there (the replays took none), then it is spent.
        statuses = [wait_until(lambda: get(b).status_code if True else None, timeout=5)]
        statuses += [get(a).status_code, get(b).status_code]
        assert statuses == [200, 200, 402], statuses
        wait_until(lambda: cluster.redis_calls(kid) == 4, timeout=30, what="pack calls counted")
        for n, sidecar in enumerate((a, b), start=1):  # anything metered before these is counted by then
            assert get(sidecar, key=PROBE, path="/probe").status_code == 200
            wait_until(lambda: cluster.redis_calls(key_id(PROBE)) == n, timeout=30, what="probe counted")
        assert cluster.redis_calls(kid) == 4 and upstream.count("/v1/echo") == 4
    finally:
        upstream.stop()
