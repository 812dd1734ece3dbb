"""Issue 4 (admin): lowering a key's limit, or revoking the key, takes effect on every sidecar, and
how long that takes (p50 and p99 over repeated changes, four sidecars) is measured and printed.

"Takes effect" is observed from outside: a thread per sidecar polls that sidecar (its local check
API, which asks the same quota gate as a proxied call, or the proxy itself for revocation) until
it answers the new way. The figure therefore includes one poll's latency, printed beside it.
"""
import json
import multiprocessing
import socket
import time

import requests

from conftest import wait_until
from test_quota import key_id, targets

TOKEN = "propagation-admin-token-0123456789"
PLANS = """
  daily:
    features:
      api_call: {limit: 1000, reset: day}
"""
KEY = "tg_propagation_key"


def start(cluster, monkeypatch, sidecars=int(__import__("os").environ.get("PROP_SIDECARS", "4"))):
    monkeypatch.setenv("TOLLGATE_TEST_ADMIN_TOKEN", TOKEN)
    cluster.config(PLANS, f"  - {{key: {KEY}, plan: daily, name: prop}}")
    cluster.start_redis(appendonly=False)
    cluster.start_upstream()
    collector = cluster.start_collector(settings="  admin_token_env: TOLLGATE_TEST_ADMIN_TOKEN")
    for _ in range(sidecars):
        cluster.start_sidecar()
    return collector


ADMIN_SESSION = requests.Session()


def admin(collector, method, path, body=None):
    response = ADMIN_SESSION.request(method, f"http://127.0.0.1:{collector['http']}/v1/admin{path}", json=body,
                                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert response.status_code in (200, 201), response.text
    return response.json()


ADMIN_CALLS = []


def _watch(sidecar, observed, ready, go, out):
    """Runs in its own process (no GIL shared with the other watchers): polls one sidecar until
    `observed` holds and reports the monotonic time it first did, and how many polls came before."""
    poller = Poller(sidecar)
    ready.set()
    go.wait()
    deadline = time.monotonic() + 5
    misses = 0
    while time.monotonic() < deadline:
        if observed(poller):
            out.put((sidecar["name"], time.perf_counter(), misses))
            return
        misses += 1
        time.sleep(0.001)
    out.put((sidecar["name"], None, misses))


def measure(sidecars, change, observed, misses=None):
    """Applies `change()` and returns, per sidecar, seconds from just before the change was sent
    until `observed(poller)` held there. CLOCK_MONOTONIC is shared by all processes.
    The polls that did not yet observe the change are added to `misses` when one is given."""
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    go = context.Event()
    readies = []
    workers = []
    for sidecar in sidecars:
        ready = context.Event()
        readies.append(ready)
        workers.append(context.Process(target=_watch, args=(sidecar, observed, ready, go, out)))
    for worker in workers:
        worker.start()
    for ready in readies:
        ready.wait(10)
    go.set()
    time.sleep(0.005)  # every watcher has made its first (old-state) poll
    start = time.perf_counter()
    change()
    ADMIN_CALLS.append(time.perf_counter() - start)
    results = [out.get(timeout=10) for _ in workers]
    for worker in workers:
        worker.join()
    assert all(t is not None for _, t, _ in results), f"a sidecar never applied the change: {results}"
    if misses is not None:
        misses.extend(m for _, _, m in results)
    return [t - start for _, t, _ in results]


class Poller:
    """Polls one sidecar over kept-alive raw sockets: a poll costs the watcher a write and a read,
    not a Python HTTP client's work, so four watchers do not starve the processes they watch."""

    CHECK = json.dumps({"key": KEY}).encode()

    def __init__(self, sidecar):
        self.sidecar = sidecar
        self.sockets = {}

    def _request(self, port, head, body=b""):
        sock = self.sockets.get(port)
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sockets[port] = sock
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, "the sidecar closed the connection"
            data += chunk
        header, rest = data.split(b"\r\n\r\n", 1)
        lines = header.decode("latin-1").split("\r\n")
        length = next(int(l.split(":", 1)[1]) for l in lines[1:] if l.lower().startswith("content-length:"))
        while len(rest) < length:
            rest += sock.recv(65536)
        return int(lines[0].split()[1]), rest[:length]

    def check(self):
        port = self.sidecar["admin"]
        head = (f"POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(self.CHECK)}\r\n\r\n").encode()
        return json.loads(self._request(port, head, self.CHECK)[1])

    def echo_status(self):
        port = self.sidecar["listen"]
        head = f"GET /v1/echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {KEY}\r\n\r\n".encode()
        return self._request(port, head)[0]


def served_or_revoked(poller):
    """One proxied call: True once it is refused as revoked (401). Until then it must be served."""
    status = poller.echo_status()
    assert status in (200, 401), f"unexpected status {status} while waiting for the revocation"
    return status == 401


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(what, samples, poll):
    ms = [s * 1000 for s in samples]
    admin_ms = [s * 1000 for s in ADMIN_CALLS]
    print(f"\n{what}: n={len(ms)} p50={percentile(ms, 50):.2f} ms p99={percentile(ms, 99):.2f} ms "
          f"max={max(ms):.2f} ms, measured from just before the admin request; the admin request itself "
          f"took p50={percentile(admin_ms, 50):.2f} ms; one /v1/check poll alone: p50={percentile(poll, 50):.2f} ms")


def test_limit_changes_and_revocation_reach_every_sidecar(cluster, monkeypatch):
    collector = start(cluster, monkeypatch)
    sidecars = cluster.sidecars
    session = requests.Session()
    # Every sidecar serves the key (and holds a lease) before the changes begin: 20 calls each.
    for sidecar in sidecars:
        for _ in range(20):
            assert session.get(f"http://127.0.0.1:{sidecar['listen']}/v1/echo", headers={"X-API-Key": KEY}, timeout=5).status_code == 200
    poll = []
    poller = Poller(sidecars[0])
    for _ in range(50):
        t = time.perf_counter()
        poller.check()
        poll.append((time.perf_counter() - t) * 1000)

    lowered, raised = [], []
    for _ in range(15):
        # 80 calls are used: a limit of 10 refuses the next call everywhere, 1,000 admits it again.
        lowered += measure(sidecars, lambda: admin(collector, "PUT", f"/keys/{key_id(KEY)}/limits", {"api_call": 10}),
                           lambda p: p.check()["allowed"] is False)
        raised += measure(sidecars, lambda: admin(collector, "PUT", f"/keys/{key_id(KEY)}/limits", {"api_call": None}),
                          lambda p: p.check()["allowed"] is True)
    report("limit lowered -> refused on every sidecar", lowered, poll)
    report("limit restored -> admitted on every sidecar", raised, poll)

    served_before_revocation = []
    revoked = measure(sidecars, lambda: admin(collector, "POST", f"/keys/{key_id(KEY)}/revoke"),
                      served_or_revoked, misses=served_before_revocation)
    report("revoked -> 401 on every sidecar", revoked, poll)
    # Every call served before the revocation reached a sidecar is counted, once: the 80 above plus
    # the watchers' polls that were still served (their usage may still be on its way to Redis).
    before = 80 + sum(served_before_revocation)
    wait_until(lambda: cluster.redis_calls(key_id(KEY)) == before, timeout=10,
               what=f"Redis counting the {before} calls served before the revocation")
    # Revoked stays revoked: a call now is refused everywhere and never counted.
    for sidecar in sidecars:
        assert session.get(f"http://127.0.0.1:{sidecar['listen']}/v1/echo", headers={"X-API-Key": KEY}, timeout=5).status_code == 401
    time.sleep(0.3)
    assert cluster.redis_calls(key_id(KEY)) == before
