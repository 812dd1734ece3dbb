#!/usr/bin/env bash
# The run command (README): sets up a fresh machine and starts what Tollgate has so far against a
# real redis-server. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
echo "== building (release)"
swift build -c release --product tollgate --product tollgate-bench 2>&1 | tail -1
bin=$(swift build -c release --show-bin-path)

work=$(mktemp -d /tmp/tollgate-quickstart.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
echo "== redis-server on 127.0.0.1:$port"

export TOLLGATE_ADMIN_TOKEN=quickstart-admin-token-0001 TOLLGATE_DEMO_FREE_KEY=tg_demo_free_0001
echo "== validating deploy/tollgate.example.yaml"
"$bin/tollgate" check-config -c deploy/tollgate.example.yaml

echo "== Redis through Tollgate's hiredis wrapper, beside redis-benchmark"
"$bin/tollgate-bench" redis-incr --port "$port" --count 50000 --depths 1,16,1000
redis-benchmark -p "$port" -c 1 -t incr -P 16 -n 200000 -q

echo
echo "The collector, sidecars and demo upstream arrive with the metering pipeline (issue 3)."
