#!/usr/bin/env bash
# Takes a screenshot of the collector's live dashboard from a real run and checks it shows data:
# runs tests/system/test_dashboard.py (real redis-server, collector, two sidecars, demo upstream and
# the local x402 facilitator; traffic near, at and over limits, overage, one paid call), in which
# headless Chromium renders /dashboard, dumps the DOM after the page's JavaScript ran (key names,
# sidecar ids, a non-zero ingest rate, bar levels and money must be there) and saves a PNG that must
# not be blank. The PNG is kept at $1 (default docs/dashboard.png).
#
#   scripts/dashboard-screenshot.sh [out.png]      # TOLLGATE_BIN=/path/to/tollgate skips the build
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(realpath -m "${1:-docs/dashboard.png}")
scripts/install-deps.sh   # includes chromium
if [ -z "${TOLLGATE_BIN:-}" ]; then
    swift build --product tollgate 2>&1 | tail -1
    TOLLGATE_BIN="$(swift build --show-bin-path)/tollgate"
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r tests/system/requirements.txt
TOLLGATE_BIN="$TOLLGATE_BIN" TOLLGATE_DASHBOARD_PNG="$out" .venv/bin/pytest -q -rs tests/system/test_dashboard.py
[ -s "$out" ] || { echo "no screenshot was written (was the test skipped?)" >&2; exit 1; }
echo "dashboard screenshot: $out ($(stat -c %s "$out") bytes)"
