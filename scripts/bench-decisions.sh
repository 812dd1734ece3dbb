#!/usr/bin/env bash
# The sidecar's local quota decision (QuotaGate.decide) on one thread for cached keys, with 1 key
# and with 100,000 keys, beside one Redis round trip (redis-benchmark PING, one client, unpipelined)
# measured in the same run: the ratio says how many local decisions fit in one network round trip,
# which is what the sidecar saves by deciding locally. Also prints the memory per cached key of the
# quota gate and of the key directory (every key on one shared plan).
#
#   scripts/bench-decisions.sh                 # 5,000,000 decisions per key count
#   COUNT=20000000 KEYS=1,100000 scripts/bench-decisions.sh
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-5000000}"
KEYS="${KEYS:-1,100000}"

echo "== building tollgate-bench (release)"
swift build -c release --product tollgate-bench >/dev/null
BENCH="$(swift build -c release --show-bin-path)/tollgate-bench"

source scripts/lib/bench-redis-server.sh
start_bench_redis tg-bench-decisions

echo "== redis-benchmark -p $port -c 1 -t ping_mbulk -n 100000 -q"
rtt_per_second="$(redis-benchmark -p "$port" -c 1 -t ping_mbulk -n 100000 -q 2>/dev/null | tr '\r' '\n' \
    | grep -o '[0-9.]* requests per second' | tail -1 | awk '{print $1}')"
echo "   $rtt_per_second round trips/s"

echo "== taskset -c 0 $BENCH decisions --keys $KEYS --count $COUNT"
taskset -c 0 "$BENCH" decisions --keys "$KEYS" --count "$COUNT" | while read -r line; do
    echo "   $line"
    dps="$(sed -n 's/.*decisions_per_second=\([0-9]*\).*/\1/p' <<<"$line")"
    keys="$(sed -n 's/^keys=\([0-9]*\).*/\1/p' <<<"$line")"
    awk -v d="$dps" -v r="$rtt_per_second" -v k="$keys" \
        'BEGIN { printf "   keys=%s: %.0f decisions/s = %.1f x one Redis round trip per second (%.0f/s)\n", k, d, d / r, r }'
done
echo "== reproduce: COUNT=$COUNT KEYS=$KEYS scripts/bench-decisions.sh"
