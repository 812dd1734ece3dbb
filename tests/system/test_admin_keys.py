"""Issue 4 (admin part): `tollgate keys ...` drives a real collector's admin API end to end, and
every change is in Redis, with its version, and published (counted on /metrics)."""
import hashlib
import json
import os
import re
import subprocess

import requests

from conftest import wait_until

TOKEN = "system-admin-token-0123456789"
DEMO_KEY = "tg_system_admin_demo"
PLANS = """
  free:
    features:
      api_call: {limit: 1000, reset: day}
      export: {enabled: false}
  pro:
    features:
      api_call: {limit: 100000, reset: month}
"""
KEYS_YAML = f"  - {{key: {DEMO_KEY}, plan: free, name: demo}}"


def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()


def start(cluster):
    cluster.config(PLANS, KEYS_YAML)
    cluster.start_redis(appendonly=False)
    collector = cluster.start_collector(settings=f"  admin_token_env: TOLLGATE_TEST_ADMIN_TOKEN")
    return collector


def run_keys(cluster, collector, *args, token=TOKEN, check=True):
    """Runs `tollgate keys ARGS` against the collector; returns the completed process."""
    env = {**os.environ, "TOLLGATE_COLLECTOR_URL": f"http://127.0.0.1:{collector['http']}"}
    env.pop("TOLLGATE_ADMIN_TOKEN", None)
    if token is not None:
        env["TOLLGATE_ADMIN_TOKEN"] = token
    result = subprocess.run([str(cluster.bin), "keys", *args], env=env, capture_output=True, text=True, timeout=30)
    if check:
        assert result.returncode == 0, f"tollgate keys {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def published(collector, kind):
    text = requests.get(f"http://127.0.0.1:{collector['http']}/metrics", timeout=5).text
    match = re.search(rf'tollgate_collector_updates_published_total\{{kind="{kind}"\}} (\d+)', text)
    return int(match.group(1)) if match else 0


def version(cluster):
    return int(cluster.redis.get("tg:version") or 0)


def test_keys_cli_end_to_end(cluster, monkeypatch):
    monkeypatch.setenv("TOLLGATE_TEST_ADMIN_TOKEN", TOKEN)
    collector = start(cluster)
    demo = key_id(DEMO_KEY)
    assert version(cluster) == 1

    listing = json.loads(run_keys(cluster, collector, "list", "--json").stdout)
    assert [k["name"] for k in listing["keys"]] == ["demo"]
    table = run_keys(cluster, collector, "list").stdout
    assert table.splitlines()[0].split() == ["NAME", "ID", "PLAN", "REVOKED", "SOURCE", "LIMITS"]
    assert re.search(rf"^demo\s+{demo[:12]}\s+free\s+no\s+config", table, re.M)

    # create: the collector makes the key, prints it once, and stores only its hash
    created = json.loads(run_keys(cluster, collector, "create", "--name", "acme", "--plan", "free", "--json").stdout)
    api_key = created["api_key"]
    acme = key_id(api_key)
    assert created["key"]["id"] == acme
    assert cluster.redis.hget(f"tg:{{{acme}}}:key", "plan") == "free"
    assert cluster.redis.sismember("tg:keys", acme)
    assert api_key not in json.dumps(cluster.redis.hgetall(f"tg:{{{acme}}}:key"))
    assert version(cluster) == 2
    wait_until(lambda: published(collector, "key_added") == 1, timeout=5, what="KEY_ADDED published")

    out = run_keys(cluster, collector, "set-plan", "acme", "pro").stdout
    assert "plan pro" in out and "version 3" in out
    assert cluster.redis.hget(f"tg:{{{acme}}}:key", "plan") == "pro"
    assert "unchanged" in run_keys(cluster, collector, "set-plan", "acme", "pro").stdout
    assert version(cluster) == 3

    run_keys(cluster, collector, "set-limit", demo, "api_call=5")
    assert json.loads(cluster.redis.hget(f"tg:{{{demo}}}:key", "overrides"))["limits"] == {"api_call": 5}
    shown = json.loads(run_keys(cluster, collector, "show", "demo", "--json").stdout)
    assert shown["effective"]["features"]["api_call"]["limit"] == 5
    run_keys(cluster, collector, "set-limit", "demo", "api_call=none")
    assert json.loads(cluster.redis.hget(f"tg:{{{demo}}}:key", "overrides"))["limits"] == {}
    assert version(cluster) == 5

    # credit: idempotent, in the period the key's plan has now (pro resets monthly)
    first = json.loads(run_keys(cluster, collector, "credit", "acme", "100", "--idempotency-key", "t-1", "--json").stdout)
    again = json.loads(run_keys(cluster, collector, "credit", "acme", "100", "--idempotency-key", "t-1", "--json").stdout)
    assert first["duplicate"] is False and again["duplicate"] is True
    assert re.fullmatch(r"m\d{6}", first["period"])
    assert cluster.redis.hget(f"tg:{{{acme}}}:u:api_call:{first['period']}", "credit") == "100"
    assert version(cluster) == 6

    run_keys(cluster, collector, "revoke", "acme")
    assert cluster.redis.hget(f"tg:{{{acme}}}:key", "revoked") == "1"
    run_keys(cluster, collector, "unrevoke", "acme")
    assert cluster.redis.hget(f"tg:{{{acme}}}:key", "revoked") == "0"
    assert version(cluster) == 8

    wait_until(lambda: (published(collector, "plan_changed"), published(collector, "credited"),
                        published(collector, "key_revoked")) == (4, 1, 1), timeout=5, what="every change published")

    # refusals: wrong token, no token, unknown plan, bad limit; nothing changes
    wrong = run_keys(cluster, collector, "list", token="not-the-token-0123456789", check=False)
    assert wrong.returncode != 0 and "unauthorized" in wrong.stderr
    missing = run_keys(cluster, collector, "list", token=None, check=False)
    assert missing.returncode != 0 and "401" in missing.stderr
    unknown = run_keys(cluster, collector, "set-plan", "acme", "gold", check=False)
    assert unknown.returncode != 0 and "no plan named" in unknown.stderr
    bad = run_keys(cluster, collector, "set-limit", "acme", "api_call=-1", check=False)
    assert bad.returncode != 0
    assert version(cluster) == 8


def test_created_key_serves_through_a_sidecar(cluster, monkeypatch):
    monkeypatch.setenv("TOLLGATE_TEST_ADMIN_TOKEN", TOKEN)
    collector = start(cluster)
    cluster.start_upstream()
    sidecar = cluster.start_sidecar()
    created = json.loads(run_keys(cluster, collector, "create", "--name", "fresh", "--plan", "pro",
                                  "--key", "tg_system_admin_fresh", "--json").stdout)
    assert "api_key" not in created
    response = requests.get(f"http://127.0.0.1:{sidecar['listen']}/v1/echo",
                            headers={"X-API-Key": "tg_system_admin_fresh"}, timeout=10)
    assert response.status_code == 200, response.text
    wait_until(lambda: cluster.redis_calls(key_id("tg_system_admin_fresh")) == 1, timeout=20,
               what="the new key's call counted")
