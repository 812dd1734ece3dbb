#!/usr/bin/env bash
# INCRBY throughput through the TollgateRedis wrapper, beside redis-benchmark measured in the same run
# against the same redis-server. Starts its own server on a free port in a temp dir; kills it on exit.
#
#   scripts/bench-redis.sh            # COUNT=200000 INCRBY per wrapper mode
#   COUNT=500000 scripts/bench-redis.sh
#
# Fair comparison: the wrapper uses ONE connection, so the ratio is taken against redis-benchmark -c 1
# at the same pipeline depth. The default 50-client figures are printed too, as the server's ceiling.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-200000}"

echo "== building tollgate-bench (release)"
swift build -c release --product tollgate-bench >/dev/null
BENCH="$(swift build -c release --show-bin-path)/tollgate-bench"

source scripts/lib/bench-redis-server.sh
start_bench_redis tg-bench-redis

# Prints the requests/second of one redis-benchmark -q run.
reference() {
    redis-benchmark "$@" 2>/dev/null | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | awk '{print $1}'
}

declare -A ref ref_cmd
run_ref() {  # name, redis-benchmark arguments...
    local name="$1"; shift
    ref_cmd[$name]="redis-benchmark -p $port $*"
    echo "== ${ref_cmd[$name]}"
    ref[$name]="$(reference -p "$port" "$@")"
    echo "   ${ref[$name]} requests/s"
}
run_ref p16-c50 -t incr -P 16 -n 1000000 -q
run_ref p1-c50 -t incr -n 200000 -q
run_ref p1-c1 -c 1 -t incr -n 200000 -q
run_ref p16-c1 -c 1 -t incr -P 16 -n 1000000 -q
run_ref p1000-c1 -c 1 -t incr -P 1000 -n 2000000 -q

bench_cmd="$BENCH redis-incr --port $port --count $COUNT --depths 1,16,1000"
echo "== $bench_cmd"
out="$($bench_cmd)"
echo "$out" | sed 's/^/   /'
wrapper() { echo "$out" | grep "depth=$1 " | grep -o 'ops_per_sec=[0-9]*' | cut -d= -f2; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
printf '%-14s %14s %16s %7s  %s\n' "mode" "wrapper ops/s" "reference ops/s" "ratio" "reference"
row() {  # label, depth, reference name
    local w; w="$(wrapper "$2")"
    printf '%-14s %14s %16s %7s  %s\n' "$1" "$w" "${ref[$3]}" "$(ratio "$w" "${ref[$3]}")" "${ref_cmd[$3]}"
}
row "unpipelined" 1 p1-c1
row "pipeline-16" 16 p16-c1
row "pipeline-1000" 1000 p1000-c1
row "unpipelined" 1 p1-c50
row "pipeline-16" 16 p16-c50
echo
echo "(rows 1-3: same shape, one connection; rows 4-5: redis-benchmark's default 50 connections, the server's ceiling)"
echo "reproduce: scripts/bench-redis.sh   (wrapper alone: $BENCH redis-incr --port PORT --count $COUNT)"
