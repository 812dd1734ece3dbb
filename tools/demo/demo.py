"""The quickstart's demo (scripts/quickstart.sh): drives a running Tollgate fleet through its four
stories and checks that what Tollgate counted is what was sent.

1. normal calls on the pro plan, metered (some report units through `Tollgate-Units`);
2. a key on the free plan runs out: exactly its quota is served, then 429 with `Retry-After`,
   `RateLimit` and `RateLimit-Policy`;
3. a key on an overage plan is served past its quota and billed for the excess, in integer
   atomic units of the asset;
4. a key on a payment_required plan gets 402 with an x402 challenge; the official x402 Python SDK
   pays it (a pack of calls), and then both sidecars serve the pack without another payment.

Every step is checked, and so is the usage the collector reports at the end; any mismatch exits 1.
The facilitator it pays through is the local one (tools/facilitator): it touches no chain.

    python tools/demo/demo.py --collector http://127.0.0.1:17480 --sidecar http://127.0.0.1:18081 \\
        --sidecar http://127.0.0.1:18082
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "system"))
from x402_check import sdk_payment_headers  # noqa: E402  (the SDK signs; shared with the system tests)

# What the demo sends; the plans in deploy/quickstart.yaml are sized to these.
PRO_CALLS = 200          # pro plan: 100,000 a month, nowhere near it
PRO_UNIT_CALLS = 100     # of those, calls to /units reporting 25 tokens each
FREE_LIMIT, FREE_CALLS = 100, 130
OVERAGE_LIMIT, OVERAGE_CALLS, OVERAGE_PRICE = 50, 80, 1_000   # 0.001 USDC = 1,000 atomic units per unit
PAID_LIMIT, PACK = 5, 10                                       # payment_required: 0.01 USDC buys 10 calls

KEYS = {
    "demo-pro": "tg_demo_pro_0001",
    "demo-free": "tg_demo_free_0001",
    "demo-overage": "tg_demo_overage_0001",
    "demo-paid": "tg_demo_paid_0001",
}


class DemoError(Exception):
    pass


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoError(what)


def call(session: requests.Session, sidecar: str, key: str, path: str = "/hello", headers=None) -> requests.Response:
    return session.get(f"{sidecar}{path}", headers={"X-API-Key": KEYS[key], **(headers or {})}, timeout=30)


def say(text: str) -> None:
    print(text, flush=True)


def step_metered(session, sidecars) -> None:
    say(f"\n== 1. metered calls: {PRO_CALLS} calls for demo-pro over both sidecars "
        f"({PRO_UNIT_CALLS} of them to /units, where the upstream reports 25 tokens each)")
    for i in range(PRO_CALLS):
        sidecar = sidecars[i % len(sidecars)]
        if i < PRO_UNIT_CALLS:
            r = call(session, sidecar, "demo-pro", "/units", {"X-Demo-Units": "tokens=25"})
            expect("tollgate-units" not in r.headers, "the sidecar must strip Tollgate-Units before the client sees it")
        else:
            r = call(session, sidecar, "demo-pro")
        expect(r.status_code == 200, f"demo-pro call {i + 1} answered {r.status_code}: {r.text}")
    say(f"   all {PRO_CALLS} served; RateLimit on the last one: {r.headers.get('RateLimit')}")


def step_block(session, sidecars) -> None:
    say(f"\n== 2. block: demo-free (free plan, {FREE_LIMIT} calls a day) sends {FREE_CALLS} over both sidecars")
    served, refused, first_refusal = 0, 0, None
    for i in range(FREE_CALLS):
        r = call(session, sidecars[i % len(sidecars)], "demo-free")
        if r.status_code == 200:
            served += 1
        else:
            expect(r.status_code == 429, f"demo-free call {i + 1} answered {r.status_code}: {r.text}")
            refused += 1
            first_refusal = first_refusal or r
    expect((served, refused) == (FREE_LIMIT, FREE_CALLS - FREE_LIMIT),
           f"demo-free: {served} served and {refused} refused; the quota is {FREE_LIMIT}")
    r = first_refusal
    for header in ("Retry-After", "RateLimit", "RateLimit-Policy"):
        expect(header in r.headers, f"the 429 lacks {header}")
    say(f"   {served} served, {refused} refused. The first refusal:")
    say(f"   HTTP {r.status_code}  Retry-After: {r.headers['Retry-After']}  RateLimit: {r.headers['RateLimit']}"
        f"  RateLimit-Policy: {r.headers['RateLimit-Policy']}")
    say(f"   {r.text.strip()}")


def step_overage(session, sidecars) -> None:
    say(f"\n== 3. overage: demo-overage ({OVERAGE_LIMIT} included, then 0.001 USDC a call) sends {OVERAGE_CALLS}")
    for i in range(OVERAGE_CALLS):
        r = call(session, sidecars[i % len(sidecars)], "demo-overage")
        expect(r.status_code == 200, f"demo-overage call {i + 1} answered {r.status_code}: {r.text}")
    say(f"   all {OVERAGE_CALLS} served; {OVERAGE_CALLS - OVERAGE_LIMIT} of them are billed as overage")


def decode(value: str) -> dict:
    return json.loads(base64.b64decode(value))


def step_payment(session, sidecars) -> str:
    say(f"\n== 4. x402: demo-paid ({PAID_LIMIT} calls a day, then payment required: 0.01 USDC buys {PACK} calls)")
    for i in range(PAID_LIMIT):
        r = call(session, sidecars[i % len(sidecars)], "demo-paid")
        expect(r.status_code == 200, f"demo-paid call {i + 1} answered {r.status_code}: {r.text}")
    challenge = call(session, sidecars[0], "demo-paid")
    expect(challenge.status_code == 402 and "PAYMENT-REQUIRED" in challenge.headers,
           f"after its quota demo-paid should get 402 with PAYMENT-REQUIRED, got {challenge.status_code}")
    offer = decode(challenge.headers["PAYMENT-REQUIRED"])["accepts"][0]
    say(f"   call {PAID_LIMIT + 1}: HTTP 402, PAYMENT-REQUIRED asks {offer['amount']} atomic units of {offer['asset']}"
        f" on {offer['network']}, pay to {offer['payTo']}")
    payment = sdk_payment_headers(challenge.headers, challenge.content, version=2)
    say("   the x402 Python SDK signs an EIP-3009 authorization (a fresh account) and retries on sidecar-1")
    paid = call(session, sidecars[0], "demo-paid", headers=payment)
    expect(paid.status_code == 200 and "PAYMENT-RESPONSE" in paid.headers,
           f"the paid call answered {paid.status_code}: {paid.text}")
    receipt = decode(paid.headers["PAYMENT-RESPONSE"])
    expect(receipt.get("success") is True, f"settlement failed: {receipt}")
    say(f"   HTTP 200, PAYMENT-RESPONSE: success, transaction {receipt['transaction']} (made up: the local facilitator touches no chain)")
    for i in range(PACK):
        sidecar = sidecars[i % len(sidecars)]
        deadline = time.monotonic() + 5
        r = call(session, sidecar, "demo-paid")
        while r.status_code == 402 and i < len(sidecars) and time.monotonic() < deadline:
            time.sleep(0.02)  # the credit reaches the other sidecar through the update stream
            r = call(session, sidecar, "demo-paid")
        expect(r.status_code == 200, f"pack call {i + 1} on {sidecar} answered {r.status_code}: {r.text}")
    say(f"   the pack: {PACK} more calls served, alternating sidecar-1 and sidecar-2, with no payment")
    again = call(session, sidecars[1], "demo-paid")
    expect(again.status_code == 402, f"after the pack demo-paid should pay again, got {again.status_code}")
    say("   the next call: HTTP 402 again")
    # Behind a load balancer both sidecars serve one host, so the payment names the same resource there.
    host = sidecars[0].split("://", 1)[1]
    replay = call(session, sidecars[1], "demo-paid", headers={**payment, "Host": host})
    expect(replay.status_code == 402 and replay.json().get("error") == "invalid_exact_evm_nonce_already_used",
           f"a replayed payment answered {replay.status_code}: {replay.text}")
    say(f"   the spent payment replayed on sidecar-2 (Host: {host}): HTTP 402 ({replay.json()['error']}), never served twice")
    return receipt["transaction"]


def expected_usage() -> dict[str, int]:
    return {
        "demo-pro": PRO_CALLS,
        "demo-free": FREE_LIMIT,
        "demo-overage": OVERAGE_CALLS,
        "demo-paid": PAID_LIMIT + 1 + PACK,
    }


def api_call(collector: str, name: str) -> dict:
    report = requests.get(f"{collector}/v1/usage/{name}", timeout=10).json()
    return next(f for f in report["features"] if f["feature"] == "api_call")


def usdc(atomic: int) -> str:
    """Integer atomic units of USDC (6 decimals) as a decimal string, without floating point."""
    return f"{atomic // 10**6}.{atomic % 10**6:06d}"


def check_usage(collector: str, transaction: str) -> None:
    """Waits until the collector has counted what was served (usage is batched), then checks it."""
    want = expected_usage()
    deadline = time.monotonic() + 20
    while True:
        got = {name: api_call(collector, name)["used"] for name in want}
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    expect(got == want, f"the collector counted {got}; the demo was served {want}")
    overage = api_call(collector, "demo-overage")
    units = OVERAGE_CALLS - OVERAGE_LIMIT
    expect((overage["overage_units"], overage["overage_charge"]) == (units, units * OVERAGE_PRICE),
           f"demo-overage is billed {overage['overage_units']} units / {overage['overage_charge']}")
    paid = api_call(collector, "demo-paid")
    expect(paid["credits"] == PACK + 1, f"demo-paid was credited {paid['credits']} units; it bought {PACK} + the paid call")
    settlements = requests.get(f"{collector}/v1/settlements", params={"key": "demo-paid"}, timeout=10).json()["settlements"]
    expect([s.get("transaction") for s in settlements] == [transaction], f"the ledger holds {settlements}")
    say("\n== the collector agrees with what was served: " + ", ".join(f"{k} {v}" for k, v in want.items()) +
        f"; demo-overage owes {units} × 1,000 = {units * OVERAGE_PRICE} atomic units ({usdc(units * OVERAGE_PRICE)} USDC);"
        f" demo-paid paid once ({transaction[:12]}…)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collector", required=True, help="the collector's HTTP base URL")
    parser.add_argument("--sidecar", action="append", required=True, help="a sidecar's proxy base URL (give two)")
    args = parser.parse_args()
    session = requests.Session()
    try:
        step_metered(session, args.sidecar)
        step_block(session, args.sidecar)
        step_overage(session, args.sidecar)
        transaction = step_payment(session, args.sidecar)
        check_usage(args.collector, transaction)
    except DemoError as error:
        print(f"\ndemo FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
