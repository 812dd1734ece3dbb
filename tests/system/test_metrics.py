"""Issue 6 (metrics catalogue): the live `/metrics` of a collector and a sidecar pass
`promtool check metrics` (apt: prometheus), every family they export is in the catalogue
(`tollgate metrics-catalogue`, docs/metrics.md) with the same type, and every catalogued family is
exported once the fleet has done what makes it appear.

The fleet serves metered calls, refuses one (429), takes an x402 payment from the official SDK,
refuses a tampered one, and answers an admin request, so payment and admin families exist too.
"""
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from conftest import tollgate_binary, wait_until
from test_payments import start_facilitator_and_config, tampered
from test_sinks import SECRET, SECRET_ENV, start_stripe
from x402_check import sdk_payment_headers

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-admin-token-0123456789"
PLANS = """
  free:
    features:
      api_call: {limit: 3, reset: day}
  payg:
    features:
      api_call:
        limit: 1
        reset: day
        policy: {payment_required: {price: "0.01", buys: {units: 2}}}
"""
KEYS = """  - {key: tg_metrics_free_key, plan: free, name: free, stripe_customer: cus_metrics}
  - {key: tg_metrics_paid_key, plan: payg, name: paid}"""
# Families that exist only after an event this test does not cause (a frame of an unknown kind,
# an update the publisher could not send); they are still checked against the catalogue whenever
# they do appear.
RARE = {"tollgate_collector_unhandled_messages_total", "tollgate_collector_updates_dropped_total",
        "tollgate_collector_stripe_retries_total", "tollgate_collector_stripe_failures_total",
        "tollgate_collector_stripe_resends_total", "tollgate_collector_stripe_skipped_total",
        "tollgate_collector_payment_identifier_total",
        # Only with zeromq.curve.allowed_client_keys (tests/system/test_curve.py).
        "tollgate_collector_curve_clients_total"}


def families(text):
    """{name: type} from the `# TYPE` lines of a Prometheus text exposition."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M))


def label_names(text):
    """{family: {label names}} from the samples of an exposition (a histogram's `le` left out)."""
    names = {}
    for name, labels in re.findall(r"^(tollgate_[a-z_]+?)(?:_bucket|_sum|_count)?(?:\{([^}]*)\})? ", text, flags=re.M):
        found = {pair.split("=", 1)[0] for pair in labels.split(",") if pair} - {"le"}
        names.setdefault(name, set()).update(found)
    return names


def catalogue():
    """The Markdown, {name: (type, process)} and {name: {labels}} from `tollgate metrics-catalogue`."""
    out = subprocess.run([tollgate_binary(), "metrics-catalogue"], check=True, capture_output=True, text=True).stdout
    entries, labels, process = {}, {}, None
    for line in out.splitlines():
        if line.startswith("## "):
            process = line[3:].strip()
        elif m := re.match(r"^\| `(\S+)` \| (\w+) \| ([^|]*) \|", line):
            entries[m.group(1)] = (m.group(2), process)
            labels[m.group(1)] = set(re.findall(r"`(\w+)`", m.group(3)))
    return out, entries, labels


def test_the_metrics_catalogue_matches_live_metrics_and_promtool_passes(cluster, monkeypatch):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/install-deps.sh installs it (apt package prometheus)"
    monkeypatch.setenv("TOLLGATE_TEST_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    stripe = start_stripe(cluster)
    start_facilitator_and_config(cluster, PLANS, KEYS)
    cluster.start_redis()
    cluster.start_upstream()
    # Both sinks on, so their families are exported too.
    collector = cluster.start_collector(settings=f"""  admin_token_env: TOLLGATE_TEST_ADMIN_TOKEN
  sinks:
    audit: {{path: {cluster.dir / "audit.jsonl"}}}
    stripe:
      base_url: {stripe}
      secret_key_env: {SECRET_ENV}
      meters: {{api_call: api_calls}}
      flush_interval_ms: 100
""")
    sidecar = cluster.start_sidecar()
    proxy = f"http://127.0.0.1:{sidecar['listen']}"

    statuses = [requests.get(f"{proxy}/hello", headers={"X-API-Key": "tg_metrics_free_key"}, timeout=10).status_code
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert requests.get(f"{proxy}/hello", headers={"X-API-Key": "tg_metrics_paid_key"}, timeout=10).status_code == 200
    challenge = requests.get(f"{proxy}/hello", headers={"X-API-Key": "tg_metrics_paid_key"}, timeout=10)
    assert challenge.status_code == 402
    payment = sdk_payment_headers(challenge.headers, challenge.content)
    # A tampered payment (paid to someone else) is refused at the collector: a failed-payment count.
    other = tampered(payment, lambda p: p["accepted"].update(payTo="0x" + "1" * 40))
    assert requests.get(f"{proxy}/hello", headers={"X-API-Key": "tg_metrics_paid_key", **other}, timeout=20).status_code == 402
    paid = requests.get(f"{proxy}/hello", headers={"X-API-Key": "tg_metrics_paid_key", **payment}, timeout=20)
    assert paid.status_code == 200
    admin = requests.get(f"http://127.0.0.1:{collector['http']}/v1/admin/keys",
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert admin.status_code == 200
    wait_until(lambda: cluster.redis_calls(hashlib.sha256(b"tg_metrics_free_key").hexdigest()) == 3,
               what="usage committed")
    wait_until(lambda: requests.get(f"{stripe}/_events", timeout=5).json().get("events"), what="a meter event sent to Stripe")

    text, documented, documented_labels = catalogue()
    docs = (ROOT / "docs" / "metrics.md").read_text()
    assert text in docs, "docs/metrics.md is out of date: paste `tollgate metrics-catalogue` into it"

    for process, url in (("collector", f"http://127.0.0.1:{collector['http']}/metrics"),
                         ("sidecar", f"http://127.0.0.1:{sidecar['admin']}/metrics")):
        exposition = requests.get(url, timeout=10).text
        check = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True)
        assert check.returncode == 0, f"promtool on the {process}'s /metrics:\n{check.stdout}{check.stderr}"
        live = families(exposition)
        live_labels = label_names(exposition)
        for family, kind in live.items():
            assert family in documented, f"{process} exports {family}, which the catalogue does not list"
            assert documented[family] == (kind, process), f"{family}: live {kind} on the {process}, catalogue {documented[family]}"
            assert live_labels.get(family, set()) <= documented_labels[family], \
                f"{family} has labels {live_labels[family]}; the catalogue says {documented_labels[family]}"
        missing = {n for n, (_, p) in documented.items() if p == process} - set(live) - RARE
        assert not missing, f"catalogued for the {process} but not exported: {sorted(missing)}"


@pytest.mark.parametrize("path", ["deploy/prometheus/prometheus.yml"])
def test_the_prometheus_scrape_config_is_valid(path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/install-deps.sh installs it (apt package prometheus)"
    check = subprocess.run([promtool, "check", "config", ROOT / path], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_grafana_dashboard_uses_only_catalogued_metrics():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "tollgate.json").read_text())
    _, documented, _ = catalogue()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs, "the dashboard has no queries"
    for expr in exprs:
        names = set(re.findall(r"\btollgate_[a-z_]+", expr))
        assert names, expr
        for name in names:
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in documented, f"the Grafana dashboard queries {name}, which no process exports"
