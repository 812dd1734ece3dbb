"""Issue 5: x402 payments end to end. The official x402 Python SDK pays a sidecar's 402 (v2 and
v1); the collector verifies with the local facilitator, claims the payment in Redis, settles it
after the upstream answered, records the ledger and credits the pack to every sidecar."""
import base64
import hashlib
import json
import sys
from pathlib import Path

import requests

from conftest import ROOT, Process, free_port, wait_until
from x402_check import sdk_payment_headers

PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
ASSET = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PLANS = """
  payg:
    features:
      api_call:
        limit: 5
        reset: day
        policy: {payment_required: {price: "0.01", buys: {units: 3}}}
"""
KEY = "tg_paying_key_0001"


def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()


def start_facilitator_and_config(cluster, plans, keys):
    """Starts the local facilitator and writes the cluster's config with an x402 section using it."""
    port = free_port()
    facilitator = Process("facilitator", [sys.executable, ROOT / "tools" / "facilitator" / "facilitator.py",
                                          "--listen", f"127.0.0.1:{port}"], cluster.dir)
    cluster.processes.append(facilitator)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{url}/healthz", timeout=1).ok, what="facilitator ready")
    cluster.config(plans, keys, f"""
x402:
  network: eip155:84532
  asset: "{ASSET}"
  pay_to: "{PAY_TO}"
  extra: {{name: USDC, version: "2"}}
  facilitator: {{url: "{url}", timeout_ms: 3000}}
""")
    return url


def start(cluster):
    url = start_facilitator_and_config(cluster, PLANS, f"  - {{key: {KEY}, plan: payg, name: payer}}")
    cluster.start_redis()
    cluster.start_upstream()
    cluster.start_collector()
    cluster.start_sidecar()
    cluster.start_sidecar()
    return url


def get(sidecar, headers=None):
    return requests.get(f"http://127.0.0.1:{sidecar['listen']}/v1/echo",
                        headers={"X-API-Key": KEY, **(headers or {})}, timeout=20)


def decode_header(value):
    return json.loads(base64.b64decode(value))


def test_sdk_pays_a_pack_and_every_sidecar_serves_it(cluster):
    facilitator = start(cluster)
    a, b = cluster.sidecars
    for i in range(5):
        assert get(a if i % 2 else b).status_code == 200
    challenge = get(a)
    assert challenge.status_code == 402
    paid = get(a, sdk_payment_headers(challenge.headers, challenge.content, version=2))
    assert paid.status_code == 200, (paid.status_code, paid.text)
    response = decode_header(paid.headers["payment-response"])
    assert response["success"] is True and response["transaction"].startswith("0x"), response
    assert paid.headers["cache-control"] == "private"
    # The ledger and the credit agree: one settlement of 10,000 atomic units, 3 + 1 units credited.
    entries = cluster.redis.xrange(f"tg:{{{key_id(KEY)}}}:settlements")
    assert len(entries) == 1 and entries[0][1]["amount"] == "10000" and entries[0][1]["tx"] == response["transaction"]
    assert requests.get(f"{facilitator}/_settlements", timeout=5).json()["settlements"][0]["transaction"] == response["transaction"]
    # The collector's settlements API shows the same, and /healthz the facilitator it checked.
    http = f"http://127.0.0.1:{cluster.collectors[0]['http']}"
    listed = requests.get(f"{http}/v1/settlements", params={"key": "payer"}, timeout=5).json()["settlements"]
    assert [(e["transaction"], e["amount_atomic"], e["credited_units"], e["payer"]) for e in listed] == \
        [(response["transaction"], 10000, 4, response["payer"])]
    assert requests.get(f"{http}/healthz", timeout=5).json()["supported"] == "yes"
    # The pack: the next 3 calls pass on either sidecar without paying, the 4th asks again.
    statuses = [wait_until(lambda: get(a).status_code if True else None, timeout=5)]
    statuses += [get(b).status_code, get(a).status_code, get(b).status_code]
    assert statuses == [200, 200, 200, 402], statuses
    wait_until(lambda: cluster.redis_calls(key_id(KEY)) == 5 + 1 + 3, timeout=30, what="9 calls counted")
    assert int(cluster.redis.hget(f"tg:{{{key_id(KEY)}}}:u:api_call:" + entries[0][1]["period"], "credit")) == 4


def test_replay_bad_payments_and_settlement_trouble_are_never_served(cluster):
    facilitator = start(cluster)
    a, b = cluster.sidecars
    for _ in range(5):
        assert get(a).status_code == 200
    challenge = get(a)
    assert challenge.status_code == 402
    payment = sdk_payment_headers(challenge.headers, challenge.content, version=2)
    assert get(a, payment).status_code == 200
    for _ in range(3):  # the pack it bought
        assert wait_until(lambda: get(a).status_code == 200, timeout=5)
    assert get(a).status_code == 402
    # The same payment at the other sidecar, for the same resource (behind a load balancer both see
    # one Host): refused as already used, not served, not credited.
    replay = get(b, {**payment, "Host": f"127.0.0.1:{a['listen']}"})
    assert replay.status_code == 402 and "payment-required" in replay.headers
    assert replay.json()["error"] == "invalid_exact_evm_nonce_already_used", replay.text
    # Sent to the other sidecar's own address, it names another resource, and is refused for that.
    elsewhere = get(b, payment)
    assert elsewhere.status_code == 402 and elsewhere.json()["error"] == "invalid_payment_requirements", elsewhere.text
    assert cluster.redis.xlen(f"tg:{{{key_id(KEY)}}}:settlements") == 1
    # Garbage in the header: 402 with a fresh challenge, never a 500.
    garbage = get(b, {"PAYMENT-SIGNATURE": "not base64 at all!!"})
    assert garbage.status_code == 402 and garbage.json()["x402Version"] == 1
    # Settlement failures: nothing served, nothing credited, PAYMENT-RESPONSE says so.
    for mode in ("fail", "pending", "5xx", "garbage", "timeout"):
        requests.post(f"{facilitator}/_control", json={"settle": mode, "timeout_s": 5}, timeout=5).raise_for_status()
        for _ in range(4):  # use up the credit left, if any
            if get(a).status_code == 402:
                break
        challenge = get(a)
        assert challenge.status_code == 402
        refused = get(a, sdk_payment_headers(challenge.headers, challenge.content, version=2))
        assert refused.status_code == 402, (mode, refused.status_code, refused.text)
        assert decode_header(refused.headers["payment-response"])["success"] is False, mode
        assert refused.json()["x402Version"] == 1 and refused.json()["accepts"]  # the challenge, not the content
    assert cluster.redis.xlen(f"tg:{{{key_id(KEY)}}}:settlements") == 1


def test_v1_client_pays_with_x_payment(cluster):
    start(cluster)
    a, _ = cluster.sidecars
    for _ in range(5):
        assert get(a).status_code == 200
    challenge = get(a)
    paid = get(a, sdk_payment_headers(challenge.headers, challenge.content, version=1))
    assert paid.status_code == 200, paid.text
    assert decode_header(paid.headers["x-payment-response"])["success"] is True


def tampered(payment, change):
    """The SDK's v2 payment with `change` applied to its decoded JSON, re-encoded."""
    (name, value), = payment.items()
    document = json.loads(base64.b64decode(value))
    change(document)
    return {name: base64.b64encode(json.dumps(document).encode()).decode()}


def test_bad_payments_are_refused_with_their_reason_and_a_failed_upstream_settles_nothing(cluster):
    facilitator = start(cluster)
    a, _ = cluster.sidecars
    for _ in range(5):
        assert get(a).status_code == 200
    challenge = get(a)
    payment = sdk_payment_headers(challenge.headers, challenge.content, version=2)

    def amount(d):
        d["accepted"]["amount"] = "1"
        d["payload"]["authorization"]["value"] = "1"

    def pay_to(d):
        d["accepted"]["payTo"] = "0x1111111111111111111111111111111111111111"
        d["payload"]["authorization"]["to"] = "0x1111111111111111111111111111111111111111"

    def expired(d):
        d["payload"]["authorization"]["validBefore"] = "1000"

    for name, change, reason in (("amount", amount, "invalid_payment_requirements"),
                                 ("payTo", pay_to, "invalid_payment_requirements"),
                                 ("expired", expired, "valid_before")):
        refused = get(a, tampered(payment, change))
        assert refused.status_code == 402, (name, refused.status_code)
        assert reason in refused.json()["error"], (name, refused.json()["error"])
        assert refused.json()["x402Version"] == 1 and refused.json()["accepts"]  # the challenge, not the content
    # A payment made for another route is refused there.
    elsewhere = requests.get(f"http://127.0.0.1:{a['listen']}/hello", headers={"X-API-Key": KEY, **payment}, timeout=20)
    assert elsewhere.status_code == 402 and elsewhere.json()["error"] == "invalid_payment_requirements"
    # The upstream fails: its answer is shown, nothing is settled, and the payment stays usable.
    payment = sdk_payment_headers(*(lambda c: (c.headers, c.content))(requests.get(
        f"http://127.0.0.1:{a['listen']}/status/500", headers={"X-API-Key": KEY}, timeout=20)), version=2)
    failed = requests.get(f"http://127.0.0.1:{a['listen']}/status/500", headers={"X-API-Key": KEY, **payment}, timeout=20)
    assert failed.status_code == 500 and "payment-response" not in failed.headers
    assert requests.get(f"{facilitator}/_settlements", timeout=5).json()["settlements"] == []
    assert cluster.redis.exists(f"tg:{{{key_id(KEY)}}}:settlements") == 0
    ok = requests.get(f"http://127.0.0.1:{a['listen']}/status/200", headers={"X-API-Key": KEY, **payment}, timeout=20)
    assert ok.status_code == 402  # paid for /status/500, not /status/200
    retried = requests.get(f"http://127.0.0.1:{a['listen']}/status/201", headers={"X-API-Key": KEY}, timeout=20)
    assert retried.status_code == 402


REFILL_PLANS = """
  metered:
    features:
      api_call: {limit: 1000000, reset: day}
    rate:
      capacity: 2
      refill: 1
      per_seconds: 3600
      paid_refill: {price: "0.001", tokens: 5}
"""


def test_paid_rate_refill_lifts_the_bucket(cluster):
    """A rate-limited key pays for a refill: the paid call passes and the bucket gains 5 tokens
    (above its capacity of 2), which the next 5 calls spend; the 6th is limited again."""
    start_facilitator_and_config(cluster, REFILL_PLANS, f"  - {{key: {KEY}, plan: metered, name: payer}}")
    cluster.start_redis()
    cluster.start_upstream()
    cluster.start_collector()
    sidecar = cluster.start_sidecar()
    assert [get(sidecar).status_code for _ in range(3)] == [200, 200, 402]
    challenge = get(sidecar)
    assert challenge.status_code == 402
    paid = get(sidecar, sdk_payment_headers(challenge.headers, challenge.content, version=2))
    assert paid.status_code == 200, paid.text
    statuses = [wait_until(lambda: get(sidecar).status_code == 200, timeout=5) and 200]
    statuses += [get(sidecar).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 200, 402], statuses
