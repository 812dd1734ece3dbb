"""CURVE between sidecars and collectors, end to end: with `zeromq.curve` every socket a sidecar
opens to a collector (usage uplink, key and lease requests, pushed updates) is encrypted, and with
`allowed_client_keys` a collector admits only the listed sidecars. A sidecar whose key is not on the
list knows the collector's public key, yet gets nothing: no key resolves, no usage is counted.
"""
import hashlib
import re
import subprocess
import time

import requests

from conftest import wait_until

TOKEN = "system-curve-admin-token-0123456789"
PLANS = """
  daily:
    features:
      api_call: {limit: 100000, reset: day}
"""
KEYS = """
  - {key: tg_curve_key_served, plan: daily, name: served}
  - {key: tg_curve_key_revoked, plan: daily, name: revoked}
"""


def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()


def keypair(cluster):
    out = subprocess.run([str(cluster.bin), "curve-keypair"], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert len(fields["public_key"]) == 40 and len(fields["secret_key"]) == 40, out
    return fields["public_key"], fields["secret_key"]


def curve_yaml(lines):
    # Z85 uses YAML's special characters (: # [ { ...): single quotes keep them literal.
    return "zeromq:\n  curve:\n" + "".join(f"    {name}: {value}\n" for name, value in lines)


def collector_metric(cluster, socket, result):
    text = requests.get(f"http://127.0.0.1:{cluster.collectors[0]['http']}/metrics", timeout=5).text
    total = 0.0
    for labels, value in re.findall(r'^tollgate_collector_curve_clients_total\{([^}]*)\} (\S+)$', text, re.M):
        if f'socket="{socket}"' in labels and f'result="{result}"' in labels:
            total += float(value)
    return total


def test_curve_encrypts_every_sidecar_socket_and_admits_only_listed_sidecars(cluster, monkeypatch):
    monkeypatch.setenv("TOLLGATE_TEST_ADMIN_TOKEN", TOKEN)
    server_public, server_secret = keypair(cluster)
    listed_public, listed_secret = keypair(cluster)
    stranger_public, stranger_secret = keypair(cluster)

    cluster.config(PLANS, KEYS, curve_yaml([
        ("server_public_key", f"'{server_public}'"), ("server_secret_key", f"'{server_secret}'"),
        ("allowed_client_keys", f"['{listed_public}']"),
    ]))
    cluster.start_redis()
    cluster.start_upstream()
    cluster.start_collector(settings="  admin_token_env: TOLLGATE_TEST_ADMIN_TOKEN")
    cluster.extra_yaml = curve_yaml([("server_public_key", f"'{server_public}'"),
                                     ("client_public_key", f"'{listed_public}'"), ("client_secret_key", f"'{listed_secret}'")])
    listed = cluster.start_sidecar()
    cluster.extra_yaml = curve_yaml([("server_public_key", f"'{server_public}'"),
                                     ("client_public_key", f"'{stranger_public}'"), ("client_secret_key", f"'{stranger_secret}'")])
    stranger = cluster.start_sidecar()

    # The listed sidecar: key lookups and leases (request channel) and usage (uplink) work.
    session = requests.Session()
    for _ in range(300):
        response = session.get(f"http://127.0.0.1:{listed['listen']}/v1/echo", headers={"X-API-Key": "tg_curve_key_served"}, timeout=5)
        assert response.status_code == 200, response.text
    wait_until(lambda: cluster.redis_calls(key_id("tg_curve_key_served")) == 300, timeout=20, what="Redis counts the 300 calls")

    # Pushed updates (PUB/SUB) reach it too: a revocation is enforced without any lookup.
    assert session.get(f"http://127.0.0.1:{listed['listen']}/v1/echo", headers={"X-API-Key": "tg_curve_key_revoked"},
                       timeout=5).status_code == 200
    revoke = requests.post(f"http://127.0.0.1:{cluster.collectors[0]['http']}/v1/admin/keys/{key_id('tg_curve_key_revoked')}/revoke",
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert revoke.status_code == 200, revoke.text
    wait_until(lambda: session.get(f"http://127.0.0.1:{listed['listen']}/v1/echo", headers={"X-API-Key": "tg_curve_key_revoked"},
                                   timeout=5).status_code == 401, timeout=5, what="the revocation pushed to the listed sidecar")

    # The stranger knows the collector's public key but is not on the list: nothing resolves, so
    # its callers are refused (503, never 200), and nothing it meters is counted.
    for _ in range(3):
        response = requests.get(f"http://127.0.0.1:{stranger['listen']}/v1/echo", headers={"X-API-Key": "tg_curve_key_served"}, timeout=10)
        assert response.status_code == 503, response.text
    report = requests.post(f"http://127.0.0.1:{stranger['admin']}/v1/report", timeout=5,
                           json={"key": "tg_curve_key_served", "units": 5, "idempotency_key": "stranger-1"})
    # The local report API cannot check the key either: 503 (retry), not 401 (unknown).
    assert report.status_code == 503 and report.json()["error"] == "collector_unreachable", report.text
    wait_until(lambda: collector_metric(cluster, "ingest", "refused") > 0 and collector_metric(cluster, "updates", "refused") > 0,
               timeout=10, what="the collector refusing the stranger on both sockets")
    assert collector_metric(cluster, "ingest", "admitted") >= 1 and collector_metric(cluster, "updates", "admitted") >= 1
    time.sleep(1.0)
    assert cluster.redis_calls(key_id("tg_curve_key_served")) == 300
    assert "refused a CURVE client not on the allow list" in cluster.collectors[0]["process"].log_tail(200)
