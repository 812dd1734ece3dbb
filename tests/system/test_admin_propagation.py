"""Issue 4 (admin): lowering a key's limit, or revoking the key, takes effect on every sidecar, and
how long that takes (p50 and p99 over repeated changes, four sidecars) is measured and printed.

Two measurements:
- as each sidecar recorded it: from just before the admin request (this host's clock) to the
  moment the sidecar applied the pushed change (`GET /v1/updates` on its admin port gives it, in
  the same clock). Nothing polls the sidecars while a change travels, so the figure is the
  system's own. After each change every sidecar is asked once whether the key is allowed, and
  must answer the new way (timed and printed: a restored limit costs that first call one lease
  round trip; a lowered one none, since the change names the features it left spent);
- observed from outside: one watcher process polls every sidecar (its local check API, or the
  proxy itself for revocation) in rounds 1 ms apart until each answers the new way. On two cores
  the polling slows the change it watches (the admin request takes several times longer), so
  this figure is an upper bound.
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


def _watch(sidecars, observed, ready, go, out):
    """Runs in its own process: polls every sidecar until `observed` holds on each, and reports
    per sidecar the monotonic time it first did and how many polls came before.

    One process polls all of them, a round at a time: a request goes to every sidecar still
    waiting, then the answers are read; 1 ms later the next round. Four processes (one per
    sidecar) kept two cores so busy that the admin request itself took several times longer."""
    pollers = [Poller(sidecar) for sidecar in sidecars]
    for poller in pollers:
        poller.connect(observed.port(poller))
    ready.set()
    go.wait()
    deadline = time.monotonic() + 5
    misses = {poller.sidecar["name"]: 0 for poller in pollers}
    waiting = list(pollers)
    while waiting and time.monotonic() < deadline:
        for poller in waiting:
            observed.send(poller)
        still = []
        for poller in waiting:
            status, body = poller.read_response(observed.port(poller))
            if observed.holds(status, body):
                out.put((poller.sidecar["name"], time.perf_counter(), misses[poller.sidecar["name"]]))
            else:
                misses[poller.sidecar["name"]] += 1
                still.append(poller)
        waiting = still
        if waiting:
            time.sleep(0.001)
    for poller in waiting:
        out.put((poller.sidecar["name"], None, misses[poller.sidecar["name"]]))


def measure(sidecars, change, observed, misses=None):
    """Applies `change()` and returns, per sidecar, seconds from just before the change was sent
    until `observed` held there. CLOCK_MONOTONIC is shared by all processes.
    The polls that did not yet observe the change are added to `misses` when one is given."""
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    go = context.Event()
    ready = context.Event()
    worker = context.Process(target=_watch, args=(sidecars, observed, ready, go, out))
    worker.start()
    ready.wait(10)
    go.set()
    time.sleep(0.005)  # the watcher has made its first (old-state) round
    start = time.perf_counter()
    change()
    ADMIN_CALLS.append(time.perf_counter() - start)
    results = [out.get(timeout=10) for _ in sidecars]
    worker.join()
    assert all(t is not None for _, t, _ in results), f"a sidecar never applied the change: {results}"
    if misses is not None:
        misses.extend(m for _, _, m in results)
    return [t - start for _, t, _ in results]


class Poller:
    """Polls one sidecar over kept-alive raw sockets: a poll costs the watcher a write and a read,
    not a Python HTTP client's work, so the watcher does not starve the processes it watches."""

    CHECK = json.dumps({"key": KEY}).encode()

    def __init__(self, sidecar):
        self.sidecar = sidecar
        self.sockets = {}

    def connect(self, port):
        if port not in self.sockets:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sockets[port] = sock
        return self.sockets[port]

    def send(self, port, request):
        self.connect(port).sendall(request)

    def read_response(self, port):
        sock = self.sockets[port]
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

    def check_request(self):
        port = self.sidecar["admin"]
        return port, (f"POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(self.CHECK)}\r\n\r\n").encode() + self.CHECK

    def echo_request(self):
        port = self.sidecar["listen"]
        return port, f"GET /v1/echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {KEY}\r\n\r\n".encode()

    def check(self):
        port, request = self.check_request()
        self.send(port, request)
        return json.loads(self.read_response(port)[1])


class Allowed:
    """Observed once the sidecar's local check answers `allowed` as wanted."""

    def __init__(self, wanted):
        self.wanted = wanted

    def port(self, poller):
        return poller.sidecar["admin"]

    def send(self, poller):
        poller.send(*poller.check_request())

    def holds(self, status, body):
        return json.loads(body)["allowed"] is self.wanted


class Revoked:
    """One proxied call: observed once it is refused as revoked (401). Until then it must be served."""

    def port(self, poller):
        return poller.sidecar["listen"]

    def send(self, poller):
        poller.send(*poller.echo_request())

    def holds(self, status, body):
        assert status in (200, 401), f"unexpected status {status} while waiting for the revocation"
        return status == 401


def applied_at(sidecar, key, version):
    """When `sidecar` applied an update for `key` of at least `version` (Unix ns), or None."""
    updates = requests.get(f"http://127.0.0.1:{sidecar['admin']}/v1/updates", timeout=5).json()["updates"]
    times = [u["applied_at_unix_ns"] for u in updates if u["key_id"] == key and u["version"] >= version and u["applied"]]
    return min(times) if times else None


def measure_recorded(sidecars, change, key, allowed, first_call):
    """Applies `change()` (an admin call answering the new registry version) and returns, per
    sidecar, seconds from just before it was sent until the sidecar applied it, as the sidecar
    recorded. Then asks each sidecar once (timed into `first_call`) and checks it answers `allowed`."""
    start, clock = time.time_ns(), time.perf_counter()
    version = change()["version"]
    ADMIN_CALLS.append(time.perf_counter() - clock)
    time.sleep(0.05)  # read afterwards: nothing polls while the change travels
    found = {}

    def all_applied():
        for sidecar in sidecars:
            if found.get(sidecar["name"]) is None:
                found[sidecar["name"]] = applied_at(sidecar, key, version)
        return all(found[sidecar["name"]] is not None for sidecar in sidecars)

    wait_until(all_applied, timeout=5, what="every sidecar applying the change")
    for sidecar in sidecars:
        t = time.perf_counter()
        answer = Poller(sidecar).check()
        first_call.append((time.perf_counter() - t) * 1000)
        assert answer["allowed"] is allowed, (sidecar["name"], answer)
    return [(found[s["name"]] - start) / 1e9 for s in sidecars]


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

    lower = lambda: admin(collector, "PUT", f"/keys/{key_id(KEY)}/limits", {"api_call": 10})  # noqa: E731
    restore = lambda: admin(collector, "PUT", f"/keys/{key_id(KEY)}/limits", {"api_call": None})  # noqa: E731
    # 80 calls are used: a limit of 10 refuses the next call everywhere, 1,000 admits it again.
    lowered, raised, first_refused, first_admitted = [], [], [], []
    for _ in range(25):
        lowered += measure_recorded(sidecars, lower, key_id(KEY), False, first_refused)
        raised += measure_recorded(sidecars, restore, key_id(KEY), True, first_admitted)
    report("as recorded by the sidecars: limit lowered -> applied on every sidecar", lowered, poll)
    report("as recorded by the sidecars: limit restored -> applied on every sidecar", raised, poll)
    print(f"the first call after the change (one /v1/check per sidecar, sequential): refused p50={percentile(first_refused, 50):.2f} ms "
          f"p99={percentile(first_refused, 99):.2f} ms (the change named the feature spent: no lease round trip); "
          f"admitted p50={percentile(first_admitted, 50):.2f} ms (one lease round trip)")

    ADMIN_CALLS.clear()
    polled_lowered, polled_raised = [], []
    for _ in range(10):
        polled_lowered += measure(sidecars, lower, Allowed(False))
        polled_raised += measure(sidecars, restore, Allowed(True))
    report("observed from outside (polling): limit lowered -> refused on every sidecar", polled_lowered, poll)
    report("observed from outside (polling): limit restored -> admitted on every sidecar", polled_raised, poll)

    served_before_revocation = []
    revoked = measure(sidecars, lambda: admin(collector, "POST", f"/keys/{key_id(KEY)}/revoke"),
                      Revoked(), misses=served_before_revocation)
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
