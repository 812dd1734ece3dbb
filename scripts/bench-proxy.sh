#!/usr/bin/env bash
# Proxy benchmark: wrk against (a) the demo upstream directly, (b) nginx proxy_pass to it with
# upstream keepalive, (c) the Tollgate sidecar proxy with metering on, all in one run, and prints
# req/s, p50, p99 and the ratios c/a and c/b.
#
#   scripts/bench-proxy.sh                      # 10 s per target and round, 3 rounds, wrk -t2 -c64
#   DURATION=30 CONNECTIONS=128 scripts/bench-proxy.sh
#   SKIP_BUILD=1 scripts/bench-proxy.sh         # reuse the last release build
#
# Rounds interleave the targets (a b c a b c ...) and the medians are reported, so a burst of other
# load on a shared machine hits all three alike. Everything is the production release build of
# `tollgate`, deployed as in production: redis-server, a collector, the sidecar with its config and
# `tollgate demo-upstream`. The sidecar meters every call into Redis through the collector; the
# calls Redis counted are printed at the end beside the calls wrk completed. Everything listens on
# 127.0.0.1 only.
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
LATENCY_DURATION=${LATENCY_DURATION:-5}   # then one wrk -t1 -c1 run per target (added latency without queueing); 0 skips
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
UPSTREAM_THREADS=${UPSTREAM_THREADS:-1}
PROXY_THREADS=${PROXY_THREADS:-}             # sidecar.threads; empty: one per core
NGINX_WORKERS=${NGINX_WORKERS:-auto}
KEY=${KEY:-tg_bench_key_0123456789abcdef}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
    echo "installing wrk and nginx-light" >&2
    apt-get install -y wrk nginx-light >/dev/null
fi
NGINX=$(command -v nginx)

cd "$ROOT"
command -v redis-server >/dev/null || scripts/install-deps.sh >&2
BUILD=(swift build -c release)
if [[ -z "${SKIP_BUILD:-}" ]]; then
    "${BUILD[@]}" --product tollgate >&2
fi
TOLLGATE="$("${BUILD[@]}" --show-bin-path)/tollgate"
[[ -x "$TOLLGATE" ]] || { echo "missing $TOLLGATE (build with: ${BUILD[*]} --product tollgate)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/tollgate-bench-proxy.XXXXXX)
PIDS=()
NGINX_PID=
cleanup() {
    [[ -n "$NGINX_PID" ]] && kill -QUIT "$NGINX_PID" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

UPSTREAM_PORT=$(free_port)
NGINX_PORT=$(free_port)
PROXY_PORT=$(free_port)

REDIS_PORT=$(free_port)
ROUTER_PORT=$(free_port)
PUBLISH_PORT=$(free_port)
COLLECTOR_HTTP=$(free_port)
SIDECAR_ADMIN=$(free_port)
cat >"$WORK/tollgate.yaml" <<EOF
redis: {host: 127.0.0.1, port: $REDIS_PORT}
collector:
  id: bench-collector
  router: tcp://127.0.0.1:$ROUTER_PORT
  publish: tcp://127.0.0.1:$PUBLISH_PORT
  http: 127.0.0.1:$COLLECTOR_HTTP
sidecar:
  id: bench-sidecar
  listen: 127.0.0.1:$PROXY_PORT
  admin: 127.0.0.1:$SIDECAR_ADMIN
  upstream: http://127.0.0.1:$UPSTREAM_PORT
  collectors: [tcp://127.0.0.1:$ROUTER_PORT]
  updates: [tcp://127.0.0.1:$PUBLISH_PORT]
  spool_dir: $WORK/spool
${PROXY_THREADS:+  threads: $PROXY_THREADS}
plans:
  bench:
    features:
      api_call: {limit: 1000000000000, reset: month}
keys:
  - {name: bench, key: $KEY, plan: bench}
EOF

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=($REDIS_PID)
wait_port "$REDIS_PORT"
"$TOLLGATE" demo-upstream --listen "127.0.0.1:$UPSTREAM_PORT" --threads "$UPSTREAM_THREADS" >"$WORK/upstream.log" 2>&1 &
UPSTREAM_PID=$!
PIDS+=($UPSTREAM_PID)
wait_port "$UPSTREAM_PORT"
"$TOLLGATE" collector -c "$WORK/tollgate.yaml" >"$WORK/collector.log" 2>&1 &
COLLECTOR_PID=$!
PIDS+=($COLLECTOR_PID)
wait_port "$COLLECTOR_HTTP"

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream demo { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://demo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
"$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx.log" 2>&1 &
NGINX_PID=$!
wait_port "$NGINX_PORT"

"$TOLLGATE" sidecar -c "$WORK/tollgate.yaml" >"$WORK/sidecar.log" 2>&1 &
SIDECAR_PID=$!
PIDS+=($SIDECAR_PID)
wait_port "$SIDECAR_ADMIN"
for _ in $(seq 1 200); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PROXY_PORT/")" == 200 ]] && break
    sleep 0.05
done

# CPU time (clock ticks, user + system) the given processes and their threads have used so far.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
# The processes doing a target's work: the upstream itself for (a), nginx's workers for (b), the
# sidecar for (c); after the comma, what metering costs besides (the collector and Redis).
target_pids() {
    case $1 in
        upstream) echo "$UPSTREAM_PID," ;;
        nginx) echo "$(pgrep -P "$NGINX_PID" | tr '\n' ' ')," ;;
        sidecar) echo "$SIDECAR_PID,$COLLECTOR_PID $REDIS_PID" ;;
    esac
}

# Prints "rps p50_ms p99_ms non_2xx socket_errors cpu_us_per_request" for one target.
run_wrk() {
    local port=$1 name=$2 threads=${3:-$THREADS} connections=${4:-$CONNECTIONS} duration=${5:-$DURATION}
    wrk -t"$threads" -c"$connections" -d"${WARMUP}s" -H "Authorization: Bearer $KEY" "http://127.0.0.1:$port/" \
        >"$WORK/wrk-$name-warmup.txt"
    local pids main extra before before_extra
    pids=$(target_pids "$name")
    main=${pids%%,*}
    extra=${pids#*,}
    # shellcheck disable=SC2086
    before=$(cpu_ticks $main)
    # shellcheck disable=SC2086
    before_extra=$(cpu_ticks $extra)
    wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -H "Authorization: Bearer $KEY" \
        "http://127.0.0.1:$port/" >"$WORK/wrk-$name.txt"
    # shellcheck disable=SC2086
    echo "cpu_ticks $(($(cpu_ticks $main) - before)) $(($(cpu_ticks $extra) - before_extra))" >>"$WORK/wrk-$name.txt"
    cat "$WORK/wrk-$name-warmup.txt" "$WORK/wrk-$name.txt" >>"$WORK/wrk-$name-all.txt"
    python3 - "$WORK/wrk-$name.txt" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*" + label + r"%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
bad = re.search(r"Socket errors: (.*)", text)
requests = int(re.search(r"(\d+) requests in", text).group(1))
ticks = re.search(r"cpu_ticks (\d+) (\d+)", text)
per_request = lambda t: int(t) * 1_000_000 / os.sysconf("SC_CLK_TCK") / max(requests, 1)
print(f"{rps:.0f} {ms('50'):.3f} {ms('99'):.3f} {errors.group(1) if errors else 0} {'yes' if bad else 'no'}"
      f" {per_request(ticks.group(1)):.1f} {per_request(ticks.group(2)):.1f}")
PY
}

for round in $(seq 1 "$ROUNDS"); do
    echo "a $(run_wrk "$UPSTREAM_PORT" upstream)" >>"$WORK/results"
    echo "b $(run_wrk "$NGINX_PORT" nginx)" >>"$WORK/results"
    echo "c $(run_wrk "$PROXY_PORT" sidecar)" >>"$WORK/results"
    echo "round $round/$ROUNDS: $(tail -3 "$WORK/results" | tr '\n' ' ')" >&2
done
if [[ "$LATENCY_DURATION" != 0 ]]; then
    echo "A $(run_wrk "$UPSTREAM_PORT" upstream 1 1 "$LATENCY_DURATION")" >>"$WORK/results"
    echo "B $(run_wrk "$NGINX_PORT" nginx 1 1 "$LATENCY_DURATION")" >>"$WORK/results"
    echo "C $(run_wrk "$PROXY_PORT" sidecar 1 1 "$LATENCY_DURATION")" >>"$WORK/results"
fi

# Every call the sidecar served is counted in Redis once its batch is acked (within about 10 ms).
sleep 1
METERED=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'tg:{*}:u:api_call:*' | while read -r key; do
    redis-cli -p "$REDIS_PORT" hget "$key" calls; done | awk '{s += $1} END {print s + 0}')
SENT=$(grep -ho '[0-9]* requests in' "$WORK/wrk-sidecar-all.txt" | awk '{s += $1} END {print s + 0}')

echo "bench-proxy: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency (keep-alive, GET / -> 200 'ok'), $(nproc) cores, median of $ROUNDS interleaved rounds"
python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    t, rps, p50, p99, non2xx, sock, cpu, cpu_extra = line.split()
    rows.setdefault(t, []).append((float(rps), float(p50), float(p99), int(non2xx), sock, float(cpu), float(cpu_extra)))
names = {"a": "a) upstream direct", "b": "b) nginx proxy_pass keepalive", "c": "c) tollgate sidecar, metered"}
med = {}
print(f"{'target':<30} {'req_per_s':>10} {'p50_ms':>8} {'p99_ms':>8} {'non_2xx':>8} {'sock_err':>8} {'cpu_us':>7}  rounds req/s")
for t in "abc":
    r = rows[t]
    med[t] = tuple(statistics.median(x[i] for x in r) for i in (0, 1, 2, 5, 6))
    bad = sum(x[3] for x in r)
    sock = "yes" if any(x[4] == "yes" for x in r) else "no"
    print(f"{names[t]:<30} {med[t][0]:>10.0f} {med[t][1]:>8.3f} {med[t][2]:>8.3f} {bad:>8} {sock:>8} {med[t][3]:>7.1f}  {' '.join(str(int(x[0])) for x in r)}")
a, b, c = med["a"], med["b"], med["c"]
print(f"ratio c/a req/s = {c[0] / a[0]:.3f}   ratio c/b req/s = {c[0] / b[0]:.3f}")
print(f"p50 added vs upstream: sidecar {c[1] - a[1]:+.3f} ms, nginx {b[1] - a[1]:+.3f} ms")
print(f"p99 added vs upstream: sidecar {c[2] - a[2]:+.3f} ms, nginx {b[2] - a[2]:+.3f} ms")
print(f"cpu_us: CPU time per request of the target's own process (a: upstream, b: nginx workers, c: sidecar);"
      f" sidecar/nginx {c[3] / b[3]:.2f}; metering besides (collector + Redis) {c[4]:.1f} us per request")
if "A" in rows:
    A, B, C = (rows[t][0] for t in "ABC")
    print("one connection (wrk -t1 -c1): added latency without queueing")
    for name, r in (("a) upstream direct", A), ("b) nginx proxy_pass keepalive", B), ("c) tollgate sidecar, metered", C)):
        print(f"  {name:<30} {r[0]:>8.0f} req/s  p50 {r[1]:.3f} ms  p99 {r[2]:.3f} ms")
    print(f"  added vs upstream: sidecar p50 {C[1] - A[1]:+.3f} ms p99 {C[2] - A[2]:+.3f} ms; nginx p50 {B[1] - A[1]:+.3f} ms p99 {B[2] - A[2]:+.3f} ms")
PY
echo "sidecar calls counted in Redis: $METERED; calls wrk completed through it: $SENT (warm-ups included; wrk does not count the calls in flight when it stops)"
echo "reproduce: ROUNDS=$ROUNDS DURATION=$DURATION LATENCY_DURATION=$LATENCY_DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS${PROXY_THREADS:+ PROXY_THREADS=$PROXY_THREADS} scripts/bench-proxy.sh"
