# Sourced by the benchmark scripts: starts a private redis-server for one run.
#
#   source scripts/lib/bench-redis-server.sh
#   start_bench_redis tg-bench-NAME     # sets $port, $pid, $dir; kills the server and removes $dir on exit
#
# The port is random and checked free; if redis-server still fails to bind (a race), another is tried.

REDIS_SERVER="${REDIS_SERVER:-redis-server}"

start_bench_redis() {
    dir="$(mktemp -d -t "$1.XXXXXX")"
    pid=""
    trap stop_bench_redis EXIT INT TERM
    for _ in $(seq 1 20); do
        port=$((20000 + RANDOM % 12000))
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
        "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
            --daemonize no --logfile "$dir/redis.log" &
        pid=$!
        for _ in $(seq 1 200); do
            if [[ "$(redis-cli -p "$port" ping 2>/dev/null)" == "PONG" ]]; then
                echo "== redis-server $("$REDIS_SERVER" --version | awk '{print $3}') on 127.0.0.1:$port (pid $pid, dir $dir)"
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.02
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=""
    done
    echo "could not start redis-server; log:" >&2
    cat "$dir/redis.log" >&2 || true
    exit 1
}

stop_bench_redis() {
    if [[ -n "${pid:-}" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "${dir:-}"
}
