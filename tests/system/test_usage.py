"""Issue 6, parts 1 and 4: the usage and billing API and `tollgate usage`, against a live fleet.

Known traffic goes through two sidecars on keys with block, overage (with and without a spend
cap) and payment_required plans, the last paid with the official x402 SDK through the local
facilitator. The usage API, the bill and the `?over=` list must agree exactly with what was sent
and with Redis's own counters, read here straight from Redis; the CLI must print the same.
"""
import hashlib
import json
import os
import subprocess
import time
from collections import Counter
from datetime import datetime, timezone

import requests

import loadgen
from conftest import wait_until
from test_payments import start_facilitator_and_config
from x402_check import sdk_payment_headers

PLANS = """
  blocky:
    features:
      api_call: {limit: 50, reset: day}
  metered:
    features:
      api_call:
        limit: 100
        reset: day
        policy: {overage: {price: "0.001", per: 1}}
  capped:
    features:
      api_call:
        limit: 100
        reset: day
        policy: {overage: {price: "0.002", per: 1, spend_cap: "0.1", fallback: block}}
  payg:
    features:
      api_call:
        limit: 5
        reset: day
        policy: {payment_required: {price: "0.01", buys: {units: 3}}}
  minutely:
    features:
      api_call: {limit: 30, reset: minute}
"""
KEYS = """
  - {key: tg_usage_block_0001, plan: blocky, name: block}
  - {key: tg_usage_meter_0001, plan: metered, name: meter}
  - {key: tg_usage_capped_001, plan: capped, name: capped}
  - {key: tg_usage_payg_00001, plan: payg, name: payg}
  - {key: tg_usage_idle_00001, plan: metered, name: idle}
  - {key: tg_usage_minute_001, plan: minutely, name: minute}
"""
NAMES = {"block": "tg_usage_block_0001", "meter": "tg_usage_meter_0001", "capped": "tg_usage_capped_001",
         "payg": "tg_usage_payg_00001", "idle": "tg_usage_idle_00001", "minute": "tg_usage_minute_001"}
USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()


def start(cluster, settings="", token=None):
    start_facilitator_and_config(cluster, PLANS, KEYS)
    cluster.start_redis()
    cluster.start_upstream()
    cluster.start_collector(settings=settings)
    cluster.start_sidecar()
    cluster.start_sidecar()
    # The collector loads the config's keys into the registry as it starts; wait until all six are there.
    wait_until(lambda: api(cluster, "/v1/usage", token=token).json()["keys_scanned"] == 6, timeout=20, what="keys loaded")


def api(cluster, path, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"http://127.0.0.1:{cluster.collectors[0]['http']}{path}", params=params or None,
                        headers=headers, timeout=10)


def send(cluster, name, total):
    targets = [("127.0.0.1", s["listen"]) for s in cluster.sidecars]
    responses = loadgen.run(targets, total=total, connections=8, path="/v1/echo", headers={"X-API-Key": NAMES[name]})
    return Counter(r.status for r in responses)


def get(sidecar, name, headers=None):
    return requests.get(f"http://127.0.0.1:{sidecar['listen']}/v1/echo",
                        headers={"X-API-Key": NAMES[name], **(headers or {})}, timeout=20)


def redis_counters(cluster, name, period):
    """The counter hash enforcement keeps, read straight from Redis."""
    fields = cluster.redis.hgetall(f"tg:{{{key_id(NAMES[name])}}}:u:api_call:{period}")
    return {k: int(v) for k, v in fields.items()}


def tollgate(cluster, *args, env=None):
    url = f"http://127.0.0.1:{cluster.collectors[0]['http']}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_") or k == "TOLLGATE_BIN"}
    return subprocess.run([str(cluster.bin), "usage", *args, "--collector", url], capture_output=True, text=True,
                          timeout=30, env={**clean, **(env or {})})


def drive_traffic(cluster):
    """Sends the known traffic; returns what each key was served. Waits until Redis counted it all."""
    served = {}
    statuses = send(cluster, "block", 80)
    assert statuses == {200: 50, 429: 30}, statuses
    served["block"] = 50
    statuses = send(cluster, "meter", 160)
    assert statuses == {200: 160}, statuses
    served["meter"] = 160
    # 0.1 USDC at 0.002 a unit pays for exactly 50 overage units, then the fallback blocks.
    statuses = send(cluster, "capped", 200)
    assert statuses == {200: 150, 429: 50}, statuses
    served["capped"] = 150
    # payg: 5 included, then two payments of 0.01 USDC, each buying the paid call and 3 more units.
    a = cluster.sidecars[0]
    codes = [get(a, "payg").status_code for _ in range(5)]
    for _ in range(2):
        challenge = get(a, "payg")
        assert challenge.status_code == 402, challenge.text
        paid = get(a, "payg", sdk_payment_headers(challenge.headers, challenge.content, version=2))
        assert paid.status_code == 200, (paid.status_code, paid.text)
        codes += [paid.status_code] + [get(a, "payg").status_code for _ in range(3)]
    assert codes == [200] * 13, codes
    assert get(a, "payg").status_code == 402
    served["payg"] = 13
    for name, count in served.items():
        wait_until(lambda: cluster.redis_calls(key_id(NAMES[name])) == count, timeout=30, what=f"Redis counts {name}")
    return served


def feature(report):
    [api_call] = [f for f in report["features"] if f["feature"] == "api_call"]
    return api_call


def test_usage_bill_and_over_list_agree_with_redis_and_with_what_was_sent(cluster):
    start(cluster)
    served = drive_traffic(cluster)
    today = "d" + datetime.now(timezone.utc).strftime("%Y%m%d")
    expected = {  # name: (included, overage units, overage charge, payments, payment amount, credits)
        "block": (50, 0, 0, 0, 0, 0),
        "meter": (100, 60, 60_000, 0, 0, 0),
        "capped": (100, 50, 100_000, 0, 0, 0),
        "payg": (13, 0, 0, 2, 20_000, 8),
        "idle": (100, 0, 0, 0, 0, 0),
    }
    served["idle"] = 0
    for name, (included, overage, charge, payments, amount, credits) in expected.items():
        report = api(cluster, f"/v1/usage/{key_id(NAMES[name])}").json()
        f = feature(report)
        period = f["period"]["id"]
        if period != today:  # the day rolled over during the test: read the period the API read
            today = period
        counters = redis_counters(cluster, name, period)
        # The API and Redis agree number for number, and both agree with what was sent.
        assert f["used"] == counters.get("units", 0) == served[name], (name, f, counters)
        assert f["calls"] == counters.get("calls", 0) == served[name]
        assert f["credits"] == counters.get("credit", 0) == credits
        assert (f["payments"], f["payments_amount"]) == (counters.get("pay_n", 0), counters.get("pay_amt", 0)) == (payments, amount)
        assert (f["included"], f["overage_units"], f["overage_charge"]) == (included, overage, charge), (name, f)
        assert f["remaining"] == max(0, included - served[name])
        assert f["percent_used"] == served[name] * 100 // included
        assert report["payments"] == {"count": payments, "amount": amount}
        assert report["currency"] == {"asset": USDC, "name": "USDC", "decimals": 6}
        assert report["key"]["name"] == name and report["key"]["id"] == key_id(NAMES[name])

        # The bill: one line per metered feature and totals, from the same counters.
        bill = api(cluster, f"/v1/usage/{name}/bill").json()
        [line] = bill["lines"]
        assert (line["used"], line["included"], line["included_used"], line["overage_units"], line["charge"]) == \
            (served[name], included, min(served[name], included), overage, charge), (name, line)
        assert (line["payments"], line["payments_amount"], line["credits"]) == (payments, amount, credits)
        assert bill["totals"] == {"overage_units": overage, "overage_charge": charge, "payments": payments,
                                  "payments_amount": amount, "overflow": False}
        # The same period asked for by id gives the same bill.
        named = api(cluster, f"/v1/usage/{name}/bill", period=period).json()
        assert named["lines"] == bill["lines"] and named["totals"] == bill["totals"] and named["period"] == period

    meter_line = api(cluster, "/v1/usage/meter/bill").json()["lines"][0]
    assert (meter_line["unit_price"], meter_line["per_units"], meter_line.get("spend_cap")) == (1000, 1, None)
    capped_line = api(cluster, "/v1/usage/capped/bill").json()["lines"][0]
    assert (capped_line["unit_price"], capped_line["spend_cap"], capped_line["cap_reached"]) == (2000, 100_000, True)
    # The ledger behind the payments: two settlements of 10,000 atomic units.
    ledger = cluster.redis.xrange(f"tg:{{{key_id(NAMES['payg'])}}}:settlements")
    assert [int(e[1]["amount"]) for e in ledger] == [10_000, 10_000]

    # Keys near or over their limit: percent of included, fullest first, ties by name.
    over = api(cluster, "/v1/usage", over=80).json()
    listed = [(k["key"]["name"], k["percent_used"], k["level"]) for k in over["keys"]]
    assert listed == [("meter", 160, "alert"), ("capped", 150, "alert"), ("block", 100, "alert"), ("payg", 100, "alert")], listed
    assert (over["matched"], over["keys_scanned"], over["over"]) == (4, 6, 80)
    for entry in over["keys"]:
        [f] = entry["features"]
        counters = redis_counters(cluster, entry["key"]["name"], f["period"])
        assert f["used"] == counters["units"] and f["percent_used"] == counters["units"] * 100 // f["included"]
    top = api(cluster, "/v1/usage", over=80, limit=1).json()
    assert [k["key"]["name"] for k in top["keys"]] == ["meter"] and top["matched"] == 4
    on_plan = api(cluster, "/v1/usage", plan="metered").json()
    assert [(k["key"]["name"], k["percent_used"]) for k in on_plan["keys"]] == [("meter", 160), ("idle", 0)]
    assert on_plan["keys_scanned"] == 2

    # The CLI, against the live collector: --json is the API's answer, the table shows the same figures.
    cli = tollgate(cluster, "meter", "--json")
    assert cli.returncode == 0, cli.stderr
    answer = json.loads(cli.stdout)
    assert feature(answer["usage"])["used"] == 160 and answer["bill"]["totals"]["overage_charge"] == 60_000
    assert answer["bill"]["lines"] == api(cluster, "/v1/usage/meter/bill").json()["lines"]
    table = tollgate(cluster, "meter")
    assert table.returncode == 0, table.stderr
    print("\n$ tollgate usage meter\n" + table.stdout)
    row = next(line for line in table.stdout.splitlines() if line.startswith("api_call"))
    assert "160 / 100" in row and "[####################]! 160% ALERT" in row and "0.060000 USDC" in row, row
    assert "bill estimate: overage 0.060000 USDC for 60 units" in table.stdout
    payg = tollgate(cluster, "payg")
    assert "payments received: 2 for 0.020000 USDC" in payg.stdout and "2: 0.020000 USDC" in payg.stdout, payg.stdout
    top_cli = tollgate(cluster, "--top", "--over", "80")
    assert top_cli.returncode == 0, top_cli.stderr
    print("$ tollgate usage --top --over 80\n" + top_cli.stdout)
    rows = [line.split()[0] for line in top_cli.stdout.splitlines()[1:5]]
    assert rows == ["meter", "capped", "block", "payg"], top_cli.stdout
    assert "4 of 6 keys at or over 80%" in top_cli.stdout
    top_json = json.loads(tollgate(cluster, "--top", "--over", "80", "--json").stdout)
    assert [k["key"]["name"] for k in top_json["keys"]] == ["meter", "capped", "block", "payg"]


def test_bad_requests_get_json_errors(cluster):
    start(cluster)
    unknown = "ab" * 32

    def error(path, status, code, **params):
        r = api(cluster, path, **params)
        assert r.status_code == status and r.headers["content-type"] == "application/json", (path, params, r.status_code, r.text)
        body = r.json()
        assert body["error"] == code and body["message"], body
        return body["message"]

    error(f"/v1/usage/{unknown}", 404, "unknown_key")
    error("/v1/usage/nobody", 404, "unknown_key")
    error(f"/v1/usage/{unknown}/bill", 404, "unknown_key")
    assert "d2026" in error("/v1/usage/meter", 400, "bad_period", period="d2026")
    error("/v1/usage/meter/bill", 400, "bad_period", period="m202611")  # a month id for a daily feature
    error("/v1/usage/meter/bill", 400, "bad_period", period="d20260230")  # no such day
    error("/v1/usage/meter", 400, "bad_period", period="")
    error("/v1/usage", 400, "bad_over", over="eighty")
    error("/v1/usage", 400, "bad_over", over="-5")
    error("/v1/usage", 400, "bad_over", over="99999999999999999999999")
    error("/v1/usage", 400, "bad_limit", limit="0")
    error("/v1/usage", 400, "bad_limit", limit="1001")
    assert "nope" in error("/v1/usage", 400, "unknown_plan", plan="nope")
    # The CLI reports the collector's error and fails.
    missing = tollgate(cluster, "nobody")
    assert missing.returncode != 0 and "unknown_key (HTTP 404)" in missing.stderr, (missing.returncode, missing.stderr)
    bad = tollgate(cluster, "meter", "--period", "d2026")
    assert bad.returncode != 0 and "bad_period (HTTP 400)" in bad.stderr, bad.stderr
    usage_error = tollgate(cluster, "meter", "--top")
    assert usage_error.returncode != 0 and "not both" in usage_error.stderr, usage_error.stderr


def test_a_past_period_is_billed_from_its_own_counters(cluster):
    """A minutely key: traffic in one minute, then the bill of that minute asked for by id once the
    next minute has begun. (Waits for the minute to turn: up to a minute.)"""
    start(cluster)
    # Start early in a minute so all the traffic lands in one period.
    wait_until(lambda: datetime.now(timezone.utc).second < 40, timeout=30, interval=0.2, what="an early second")
    statuses = send(cluster, "minute", 45)
    assert statuses == {200: 30, 429: 15}, statuses
    wait_until(lambda: cluster.redis_calls(key_id(NAMES["minute"])) == 30, timeout=30, what="30 counted")
    first = feature(api(cluster, "/v1/usage/minute").json())
    period = first["period"]["id"]
    assert first["used"] == redis_counters(cluster, "minute", period)["units"] == 30
    wait_until(lambda: feature(api(cluster, "/v1/usage/minute").json())["period"]["id"] != period, timeout=70,
               interval=0.5, what="the next minute")
    now = feature(api(cluster, "/v1/usage/minute").json())
    assert now["used"] == 0 and now["remaining"] == 30
    past = api(cluster, "/v1/usage/minute/bill", period=period).json()
    [line] = past["lines"]
    assert (past["period"], line["period"]["id"], line["used"], line["included"], line["overage_units"]) == (period, period, 30, 30, 0)
    assert feature(api(cluster, "/v1/usage/minute", period=period).json())["used"] == 30


def test_the_usage_api_needs_a_token_once_one_is_configured(cluster, monkeypatch):
    admin, reader = "usage-test-admin-token-0001", "usage-test-read-token-00001"
    monkeypatch.setenv("TOLLGATE_TEST_ADMIN_TOKEN", admin)
    monkeypatch.setenv("TOLLGATE_TEST_USAGE_TOKEN", reader)
    start(cluster, settings="  admin_token_env: TOLLGATE_TEST_ADMIN_TOKEN\n  usage_token_env: TOLLGATE_TEST_USAGE_TOKEN", token=reader)
    denied = api(cluster, "/v1/usage/meter")
    assert denied.status_code == 401 and denied.json()["error"] == "unauthorized"
    assert denied.headers["www-authenticate"].startswith("Bearer")
    assert api(cluster, "/v1/usage", token="wrong-token-wrong-token").status_code == 401
    assert api(cluster, "/v1/settlements", key="payg").status_code == 401
    for token in (reader, admin):
        assert api(cluster, "/v1/usage/meter", token=token).status_code == 200
        assert api(cluster, "/v1/usage/meter/bill", token=token).status_code == 200
        assert api(cluster, "/v1/usage", token=token, over=0).json()["keys_scanned"] == 6
    # The read token is not an admin token.
    http = f"http://127.0.0.1:{cluster.collectors[0]['http']}"
    assert requests.get(f"{http}/v1/admin/keys", headers={"Authorization": f"Bearer {reader}"}, timeout=5).status_code == 401
    # A key the admin API made is found by its name, as the config's keys are.
    created = requests.post(f"{http}/v1/admin/keys", json={"name": "late", "plan": "metered"},
                            headers={"Authorization": f"Bearer {admin}"}, timeout=5)
    assert created.status_code == 201, created.text
    late = api(cluster, "/v1/usage/late", token=reader).json()
    assert late["key"]["id"] == created.json()["key"]["id"] and feature(late)["used"] == 0
    # The CLI takes the read token from the environment, and says what is wrong without it.
    ok = tollgate(cluster, "late", "--json", env={"TOLLGATE_USAGE_TOKEN": reader})
    assert ok.returncode == 0 and json.loads(ok.stdout)["usage"]["key"]["name"] == "late", ok.stderr
    refused = tollgate(cluster, "late")
    assert refused.returncode != 0 and "unauthorized (HTTP 401)" in refused.stderr, refused.stderr
    # Health and metrics stay open for probes and scrapers.
    assert requests.get(f"{http}/healthz", timeout=5).status_code == 200
