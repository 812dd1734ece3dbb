"""Issue 7: the README's run command completes its demo with no manual steps, and the usage it
prints matches what it sent. It runs scripts/quickstart.sh itself (with this build's binary in
place of the release build it would make, and TOLLGATE_QUICKSTART_EXIT=1 so it stops after the
demo): real Redis, the local facilitator, a collector, two sidecars and the demo upstream, driven
by tools/demo/demo.py, which checks every step and the collector's counts and exits 1 otherwise."""
import os
import subprocess
from pathlib import Path

from conftest import tollgate_binary

ROOT = Path(__file__).resolve().parents[2]


def test_the_run_command_completes_its_demo_and_the_usage_matches():
    env = {**os.environ, "TOLLGATE_BIN": str(tollgate_binary()), "TOLLGATE_QUICKSTART_EXIT": "1"}
    run = subprocess.run([ROOT / "scripts" / "quickstart.sh"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "== the collector agrees with what was served" in output, output[-6000:]
    # Each key's `tollgate usage` table was printed, with what the demo sent.
    for name in ("demo-pro", "demo-free", "demo-overage", "demo-paid"):
        assert f"== tollgate usage {name}" in output, output[-6000:]
    assert "HTTP 429" in output and "HTTP 402" in output and "PAYMENT-RESPONSE: success" in output
    assert "http://127.0.0.1:17480/dashboard" in output
    # Ctrl-C / exit stops everything it started: nothing is left listening on the demo's ports.
    for port in (17480, 18081, 18082, 19000, 17403):
        assert subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], capture_output=True).returncode != 0, port
