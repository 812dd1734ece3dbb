#!/usr/bin/env bash
# The latency a paid x402 call adds at the sidecar and the collector, the facilitator's own time
# left out, beside an ordinary metered call through the same sidecar in the same run.
#
#   scripts/bench-payments.sh             # COUNT=200 paid calls (release build)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r tests/system/requirements.txt
echo "== building tollgate (release)"
swift build -c release --product tollgate >/dev/null
export TOLLGATE_BIN="$(swift build -c release --show-bin-path)/tollgate"
echo "== COUNT=${COUNT:-200} .venv/bin/python tools/bench/bench_payments.py"
.venv/bin/python tools/bench/bench_payments.py
echo "== reproduce: COUNT=${COUNT:-200} scripts/bench-payments.sh"
