#!/usr/bin/env bash
# The run command (README): sets up a fresh machine (apt packages, a Python venv with the x402 SDK),
# builds in release mode, and starts real Redis, the local x402 facilitator, a collector, two
# sidecars and a demo upstream on loopback; then drives the demo (tools/demo/demo.py: metered
# calls, a free key running out into 429, overage billed, an x402 payment by the official SDK
# served by both sidecars), checks what Tollgate counted and prints each key's usage. Ctrl-C stops
# everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r tests/system/requirements.txt
if [ -n "${TOLLGATE_BIN:-}" ]; then
    bin=$TOLLGATE_BIN  # a build of your own (tests/system/test_quickstart.py runs the debug build)
else
    echo "== building (release; the first build takes a few minutes)"
    swift build -c release --product tollgate 2>&1 | tail -1
    bin=$(swift build -c release --show-bin-path)/tollgate
fi

work=$(mktemp -d /tmp/tollgate-quickstart.XXXXXX)
pids=()
cleanup() {
    trap - EXIT INT TERM
    echo; echo "== stopping"
    [ -n "${sleeper:-}" ] && kill "$sleeper" 2>/dev/null
    for (( i=${#pids[@]}-1; i>=0; i-- )); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

wait_http() {
    for _ in $(seq 400); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "timed out waiting for $1; component logs:" >&2
    tail -n 5 "$work"/*.log >&2
    exit 1
}

redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly yes --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
echo "== redis-server on 127.0.0.1:$redis_port (AOF on)"

"$bin" demo-upstream --listen 127.0.0.1:19000 >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:19000/healthz

.venv/bin/python tools/facilitator/facilitator.py --listen 127.0.0.1:17403 --ledger "$work/facilitator.jsonl" \
    >"$work/facilitator.log" 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:17403/healthz
echo "== local x402 facilitator on http://127.0.0.1:17403 (checks signatures offline; touches no chain)"

config() {  # config NAME SIDECAR_PORT ADMIN_PORT
    sed -e "s/REDIS_PORT/$redis_port/" -e "s/SIDECAR_ID/$1/" -e "s/SIDECAR_PORT/$2/" -e "s/SIDECAR_ADMIN/$3/" \
        -e "s#SPOOL_DIR#$work/$1-spool#" deploy/quickstart.yaml >"$work/$1.yaml"
    echo "$work/$1.yaml"
}
"$bin" collector -c "$(config collector 18080 18180)" >"$work/collector.log" 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:17480/healthz
echo "== collector: ZeroMQ tcp://127.0.0.1:17401, HTTP http://127.0.0.1:17480"
for n in 1 2; do
    "$bin" sidecar -c "$(config sidecar-$n 1808$n 1818$n)" >"$work/sidecar-$n.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:1818$n/readyz"
    echo "== sidecar-$n: proxy http://127.0.0.1:1808$n -> demo upstream, admin http://127.0.0.1:1818$n"
done

.venv/bin/python tools/demo/demo.py --collector http://127.0.0.1:17480 \
    --sidecar http://127.0.0.1:18081 --sidecar http://127.0.0.1:18082
printf "\n== an unknown key gets: "; curl -s -H "X-API-Key: not-a-key" http://127.0.0.1:18081/hello; echo

for name in demo-pro demo-free demo-overage demo-paid; do
    echo; echo "== tollgate usage $name"
    "$bin" usage "$name" --collector http://127.0.0.1:17480
done
echo
echo "Everything is running: collector http://127.0.0.1:17480 (/v1/usage/demo-free, /metrics),"
echo "sidecars http://127.0.0.1:18081 and :18082 (try: curl -H 'X-API-Key: tg_demo_free_0001' http://127.0.0.1:18081/hello)."
echo "Live dashboard: http://127.0.0.1:17480/dashboard (open to anyone on this machine: no dashboard_token is set)."
if [ "${TOLLGATE_QUICKSTART_EXIT:-0}" = 1 ]; then exit 0; fi
echo "Ctrl-C stops everything."
# `wait` returns at once on a signal, so the trap runs now (a foreground `sleep` would delay it).
while true; do sleep 3600 & sleeper=$!; wait "$sleeper"; done
