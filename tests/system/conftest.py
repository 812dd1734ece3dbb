"""System-test harness: real redis-server, real `tollgate` processes, real HTTP and ZeroMQ.

Every process a test starts is killed when the test ends, whatever happened. Readiness is
awaited by polling the process's health endpoint (bounded), never by fixed sleeps.
"""
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis as redis_py
import requests

ROOT = Path(__file__).resolve().parents[2]


_HANDED_OUT = set()


def free_port() -> int:
    """A free port below the kernel's ephemeral range, never the same twice in one run.

    bind(0) picks from the ephemeral range, where outgoing connections (sidecar to upstream, DEALER
    to collector) also take their source ports; a server started a moment later could find its
    port taken. Below that range only listeners compete, and the bind check sees them.
    """
    try:
        upper = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        upper = 32768
    lower = max(1024, upper // 2)
    for _ in range(256):
        port = random.randrange(lower, upper)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port found")


def tollgate_binary() -> Path:
    explicit = os.environ.get("TOLLGATE_BIN")
    if explicit:
        return Path(explicit)
    bin_dir = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
    return Path(bin_dir) / "tollgate"


def wait_until(predicate, timeout=20.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - keep polling until the deadline
            last = error
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached in {timeout}s (last error: {last})")


class Process:
    """A child process with its log in the test's directory."""

    def __init__(self, name, args, directory, env=None):
        self.name = name
        self.args = [str(a) for a in args]
        self.log_path = Path(directory) / f"{name}.log"
        self.env = {**os.environ, **(env or {})}
        self.popen = None
        self.start()

    def start(self):
        log = open(self.log_path, "ab")
        # start_new_session: a SIGKILL of the test runner's group never reaches these, and
        # SIGTERM is unblocked in the child (Foundation's Process blocks it; Python does not).
        self.popen = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                      start_new_session=True)

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def kill(self):
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def terminate(self, timeout=15):
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.name} did not stop on SIGTERM within {timeout}s")

    def log_tail(self, lines=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class Cluster:
    """Builds configs and starts redis, collectors, sidecars and the demo upstream."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.bin = tollgate_binary()
        self.processes = []
        self.redis_port = free_port()
        self.redis_proc = None
        self.redis = None
        self.upstream_port = None
        self.collectors = []   # dicts: router, publish, http, process
        self.sidecars = []     # dicts: listen, admin, process

    # -- components -----------------------------------------------------------------------
    def start_redis(self, appendonly=True):
        self.redis_proc = Process("redis", [
            "redis-server", "--port", self.redis_port, "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes" if appendonly else "no", "--dir", self.dir, "--daemonize", "no",
        ], self.dir)
        self.processes.append(self.redis_proc)
        self.redis = redis_py.Redis(host="127.0.0.1", port=self.redis_port, decode_responses=True)
        wait_until(lambda: self.redis.ping(), what="redis ping")

    def start_upstream(self):
        self.upstream_port = free_port()
        proc = Process("upstream", [self.bin, "demo-upstream", "--listen", f"127.0.0.1:{self.upstream_port}"], self.dir)
        self.processes.append(proc)
        wait_until(lambda: requests.get(f"http://127.0.0.1:{self.upstream_port}/healthz", timeout=1).ok,
                   what="upstream ready")

    def config(self, plans_yaml, keys_yaml, extra=""):
        self.plans_yaml, self.keys_yaml, self.extra_yaml = plans_yaml, keys_yaml, extra

    def _write_config(self, name, section):
        text = f"""
redis: {{host: 127.0.0.1, port: {self.redis_port}}}
{section}
{self.extra_yaml}
plans:
{self.plans_yaml}
keys:
{self.keys_yaml}
"""
        path = self.dir / f"{name}.yaml"
        path.write_text(text)
        return path

    def start_collector(self, index=None, settings=""):
        """Starts a collector; `settings` are extra lines of its `collector:` section (e.g. an admin token)."""
        if index is None:
            entry = {"router": free_port(), "publish": free_port(), "http": free_port(), "name": f"collector-{len(self.collectors) + 1}",
                     "settings": settings}
            self.collectors.append(entry)
        else:
            entry = self.collectors[index]
        settings = settings or entry.get("settings", "")
        path = self._write_config(entry["name"], f"""
collector:
  id: {entry['name']}
  router: tcp://127.0.0.1:{entry['router']}
  publish: tcp://127.0.0.1:{entry['publish']}
  http: 127.0.0.1:{entry['http']}
{settings}
""")
        proc = Process(entry["name"], [self.bin, "collector", "-c", path], self.dir)
        entry["process"] = proc
        self.processes.append(proc)
        wait_until(lambda: requests.get(f"http://127.0.0.1:{entry['http']}/healthz", timeout=1).ok,
                   what=f"{entry['name']} healthy")
        return entry

    def start_sidecar(self, index=None, settings=""):
        """Starts a sidecar; `settings` are extra lines of its `sidecar:` section (e.g. an anonymous plan)."""
        if index is None:
            entry = {"listen": free_port(), "admin": free_port(), "name": f"sidecar-{len(self.sidecars) + 1}",
                     "settings": settings}
            self.sidecars.append(entry)
        else:
            entry = self.sidecars[index]
        settings = settings or entry.get("settings", "")
        routers = ", ".join(f"tcp://127.0.0.1:{c['router']}" for c in self.collectors)
        pubs = ", ".join(f"tcp://127.0.0.1:{c['publish']}" for c in self.collectors)
        path = self._write_config(entry["name"], f"""
sidecar:
  id: {entry['name']}
  listen: 127.0.0.1:{entry['listen']}
  admin: 127.0.0.1:{entry['admin']}
  upstream: http://127.0.0.1:{self.upstream_port}
  collectors: [{routers}]
  updates: [{pubs}]
  spool_dir: {self.dir / (entry['name'] + '-spool')}
{settings}
""")
        proc = Process(entry["name"], [self.bin, "sidecar", "-c", path], self.dir)
        entry["process"] = proc
        self.processes.append(proc)
        wait_until(lambda: requests.get(f"http://127.0.0.1:{entry['admin']}/readyz", timeout=1).ok,
                   what=f"{entry['name']} ready")
        return entry

    # -- inspection -----------------------------------------------------------------------
    def redis_calls(self, key_id, feature="api_call"):
        """Calls counted in Redis for a key and feature, over every period."""
        total = 0
        for name in self.redis.scan_iter(match=f"tg:{{{key_id}}}:u:{feature}:*", count=1000):
            total += int(self.redis.hget(name, "calls") or 0)
        return total

    def stop_all(self):
        for proc in reversed(self.processes):
            try:
                proc.kill()
            except Exception:  # noqa: BLE001
                pass


@pytest.fixture
def cluster(request):
    with tempfile.TemporaryDirectory(prefix="tollgate-system-") as directory:
        c = Cluster(Path(directory))
        try:
            yield c
        finally:
            failed = getattr(request.node, "rep_call", None)
            if failed is not None and failed.failed:
                for proc in c.processes:
                    print(f"---- {proc.name} log ----\n{proc.log_tail()}")
            c.stop_all()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)
