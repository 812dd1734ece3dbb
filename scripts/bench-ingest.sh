#!/usr/bin/env bash
# Usage ingest end to end (UplinkRecorder → Uplink/spool → ZeroMQ → CollectorIngest → Lua in Redis,
# verified in Redis), beside redis-benchmark's pipelined INCR measured in the same run against the
# same redis-server. Starts its own server on a free port in a temp dir; kills it on exit.
#
#   scripts/bench-ingest.sh
#   AGG_EVENTS=20000000 RAW_EVENTS=2000000 KEYS=1000 FSYNC=always scripts/bench-ingest.sh
#
# Targets (reported against, not enforced): >= 1,000,000 events/s aggregated, >= 200,000 events/s
# unaggregated, both reconciled exactly in Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

AGG_EVENTS="${AGG_EVENTS:-10000000}"
RAW_EVENTS="${RAW_EVENTS:-1000000}"
KEYS="${KEYS:-1000}"
FSYNC="${FSYNC:-interval}"
DISTRIBUTION="${DISTRIBUTION:-uniform}"
AGG_TARGET=1000000
RAW_TARGET=200000

echo "== building tollgate-bench (release)"
swift build -c release --product tollgate-bench >/dev/null
BENCH="$(swift build -c release --show-bin-path)/tollgate-bench"

source scripts/lib/bench-redis-server.sh
start_bench_redis tg-bench-ingest
echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

ref_cmd="redis-benchmark -p $port -t incr -P 16 -n 1000000 -q"
echo "== $ref_cmd"
ref="$(redis-benchmark -p "$port" -t incr -P 16 -n 1000000 -q 2>/dev/null | tr '\r' '\n' \
    | grep -o '[0-9.]* requests per second' | tail -1 | awk '{print $1}')"
echo "   $ref requests/s"

# Runs one ingest; its stdout is kept in $out, its log in $dir/<name>.log (shown on failure).
run_ingest() {  # name, arguments...
    local name="$1"; shift
    local cmd="$BENCH ingest --redis-port $port --keys $KEYS --fsync $FSYNC --distribution $DISTRIBUTION $*"
    echo "== $cmd"
    if ! out="$($cmd 2>"$dir/$name.log")"; then
        echo "ingest $name FAILED:" >&2
        cat "$dir/$name.log" >&2
        exit 1
    fi
    echo "$out" | sed 's/^/   /'
}
run_ingest aggregated --events "$AGG_EVENTS"
agg_out="$out"
run_ingest unaggregated --events "$RAW_EVENTS" --no-aggregate
raw_out="$out"

rate() { echo "$1" | grep '^ingest mode=' | grep -o 'events_per_sec=[0-9]*' | cut -d= -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { awk -v a="$1" -v t="$2" 'BEGIN { print (a >= t ? "met" : "NOT met") }'; }
agg="$(rate "$agg_out")"
raw="$(rate "$raw_out")"

echo
printf '%-14s %12s %14s %8s %12s %8s\n' "mode" "events/s" "reference/s" "ratio" "target/s" "target"
printf '%-14s %12s %14s %8s %12s %8s\n' "aggregated" "$agg" "$ref" "$(ratio "$agg" "$ref")" "$AGG_TARGET" "$(verdict "$agg" "$AGG_TARGET")"
printf '%-14s %12s %14s %8s %12s %8s\n' "unaggregated" "$raw" "$ref" "$(ratio "$raw" "$ref")" "$RAW_TARGET" "$(verdict "$raw" "$RAW_TARGET")"
echo
echo "(reference: $ref_cmd — pipelined INCR, 50 clients, the server's ceiling for the simplest write)"
echo "(events/s: first record → last ack, one process: producer + uplink + collector threads, redis-server beside it, $(nproc) cores)"
echo "reproduce: AGG_EVENTS=$AGG_EVENTS RAW_EVENTS=$RAW_EVENTS KEYS=$KEYS FSYNC=$FSYNC DISTRIBUTION=$DISTRIBUTION scripts/bench-ingest.sh"
echo "   (one run: $BENCH ingest --redis-port PORT --events N --keys K [--no-aggregate] [--fsync never|interval|always])"
