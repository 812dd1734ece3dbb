"""What a paid call adds at the sidecar and the collector, leaving out the facilitator's own time.

Starts redis-server, the local facilitator (answering at once: `--no-signature-check`), a collector, a sidecar and the demo
upstream (the tollgate binary from TOLLGATE_BIN, a release build for real figures); has the
official x402 SDK sign N single-call payments beforehand; then times N paid calls, N ordinary
metered calls through the same sidecar, and N direct upstream calls, one at a time on keep-alive
connections. The facilitator's `GET /_stats` gives its own time on /verify and /settle (from a
request's first byte arriving to its answer's last byte written), which alone is subtracted:

    added = paid − metered − facilitator's own time        (per call, mean and p50)

Everything else counts as Tollgate's: the collector's HTTP client, the loopback hops to the
facilitator and back, and the waits in between. The collector's `tollgate_collector_facilitator_seconds`
(the time it waited for the facilitator) is printed beside it, to show that split.

Run with scripts/bench-payments.sh.
"""
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "system"))

import requests  # noqa: E402

from conftest import Cluster, Process, free_port, wait_until  # noqa: E402
from x402_check import sdk_payment_headers  # noqa: E402

N = int(os.environ.get("COUNT", "200"))
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
ASSET = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


def facilitator_own_ns(base: str) -> int:
    stats = requests.get(f"{base}/_stats", timeout=5).json()
    return sum(stats["busy_ns"].get(path, 0) for path in ("/verify", "/settle"))


def facilitator_seconds(http, name="tollgate_collector_facilitator_seconds"):
    total, count = 0.0, 0
    for line in requests.get(f"{http}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + "_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + "_count"):
            count += int(float(line.rsplit(" ", 1)[1]))
    return total, count


def timed(session, url, headers):
    start = time.perf_counter()
    response = session.get(url, headers=headers, timeout=20)
    return time.perf_counter() - start, response


def main():
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-pay-") as directory:
        cluster = Cluster(Path(directory))
        try:
            port = free_port()
            facilitator = Process("facilitator", [sys.executable, ROOT / "tools" / "facilitator" / "facilitator.py",
                                                  "--listen", f"127.0.0.1:{port}",
                                                  # answering at once: its own (Python, EIP-712) CPU time is
                                                  # not Tollgate's and would crowd the processes measured
                                                  "--no-signature-check"], cluster.dir)
            cluster.processes.append(facilitator)
            wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok, what="facilitator")
            cluster.config("""
  paid:
    features:
      api_call:
        limit: 0
        reset: day
        policy: {payment_required: {price: "0.001", buys: call}}
  roomy:
    features:
      api_call: {limit: 100000000, reset: day}
""", """
  - {key: tg_bench_paying_key, plan: paid, name: paying}
  - {key: tg_bench_plain_key, plan: roomy, name: plain}
""", f"""
x402:
  network: eip155:84532
  asset: "{ASSET}"
  pay_to: "{PAY_TO}"
  extra: {{name: USDC, version: "2"}}
  facilitator: {{url: "http://127.0.0.1:{port}", timeout_ms: 5000}}
""")
            cluster.start_redis(appendonly=False)
            cluster.start_upstream()
            collector = cluster.start_collector()
            sidecar = cluster.start_sidecar()
            http = f"http://127.0.0.1:{collector['http']}"
            url = f"http://127.0.0.1:{sidecar['listen']}/v1/echo"
            session = requests.Session()
            challenge = session.get(url, headers={"X-API-Key": "tg_bench_paying_key"}, timeout=10)
            assert challenge.status_code == 402, challenge.status_code
            payments = [sdk_payment_headers(challenge.headers, challenge.content) for _ in range(N + 10)]
            for _ in range(20):  # warm up every path
                session.get(url, headers={"X-API-Key": "tg_bench_plain_key"}, timeout=10)
                session.get(f"http://127.0.0.1:{cluster.upstream_port}/v1/echo", timeout=10)
            for payment in payments[N:]:
                assert session.get(url, headers={"X-API-Key": "tg_bench_paying_key", **payment}, timeout=20).status_code == 200
            before = facilitator_seconds(http)
            own_before = facilitator_own_ns(f"http://127.0.0.1:{port}")
            steps_before = facilitator_seconds(http, "tollgate_collector_payment_step_seconds")
            # Interleaved, one of each in turn, so that drift in a shared machine's speed weighs
            # on the paid, metered and direct figures alike.
            paid, metered, direct = [], [], []
            for payment in payments[:N]:
                elapsed, response = timed(session, url, {"X-API-Key": "tg_bench_paying_key", **payment})
                assert response.status_code == 200, response.text
                paid.append(elapsed)
                metered.append(timed(session, url, {"X-API-Key": "tg_bench_plain_key"})[0])
                direct.append(timed(session, f"http://127.0.0.1:{cluster.upstream_port}/v1/echo", {})[0])
            after = facilitator_seconds(http)
            own_per_call = (facilitator_own_ns(f"http://127.0.0.1:{port}") - own_before) / N / 1e9
            steps_after = facilitator_seconds(http, "tollgate_collector_payment_step_seconds")
            facilitator_per_call = (after[0] - before[0]) / N
            assert after[1] - before[1] == 2 * N, (before, after)
            ms = lambda xs: statistics.mean(xs) * 1000  # noqa: E731
            p50 = lambda xs: statistics.median(xs) * 1000  # noqa: E731
            added_mean = ms(paid) - ms(metered) - own_per_call * 1000
            added_p50 = p50(paid) - p50(metered) - own_per_call * 1000
            print(f"paid calls:       {N}, mean {ms(paid):.3f} ms, p50 {p50(paid):.3f} ms")
            print(f"metered calls:    mean {ms(metered):.3f} ms, p50 {p50(metered):.3f} ms (reference, same sidecar)")
            print(f"direct upstream:  mean {ms(direct):.3f} ms, p50 {p50(direct):.3f} ms")
            steps_per_call = (steps_after[0] - steps_before[0]) / N
            print(f"facilitator:      {own_per_call * 1000:.3f} ms per paid call of its own (verify + settle, as it timed"
                  f" itself); the collector waited {facilitator_per_call * 1000:.3f} ms for it")
            print(f"collector steps:  {steps_per_call * 1000:.3f} ms per paid call, of which {(steps_per_call - facilitator_per_call) * 1000:.3f} ms"
                  f" is the collector's own (match, claim, ledger, credit)")
            print(f"added by a paid call, the facilitator's own time excluded: mean {added_mean:.3f} ms, p50 {added_p50:.3f} ms "
                  f"= {added_p50 / p50(metered):.2f} x a metered call's p50 (target: at most 2 ms)")
        finally:
            cluster.stop_all()


if __name__ == "__main__":
    main()
