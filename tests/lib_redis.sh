# lib_redis.sh: a real redis-server for a test script (sourced after
# lib.sh by t_redis.sh and t_worker.sh), on the Unix socket $SOCK in the
# test's folder, stopped by PID.  WHAT names the tests in a skip or fail
# line.  Without redis-server: a skip, or in CI a failure (make deps
# installs it), and the script ends.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    if [ "${CI:-}" = true ]; then fail "$WHAT" "redis-server not installed (make deps)"
    else skip "$WHAT" "redis-server not installed (make deps)"; fi
    finish
fi
RPID=
# redis_start [redis-server options...]: 0 once it answers PING
redis_start() {
    rm -f "$SOCK"
    redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --save '' --appendonly no \
        --logfile "$W/redis.log" "$@" &
    RPID=$!
    for i in $(seq 50); do
        [ "$(redis-cli -s "$SOCK" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    return 1
}
redis_stop() {
    [ -n "$RPID" ] && kill "$RPID" 2>/dev/null
    for i in $(seq 50); do kill -0 "$RPID" 2>/dev/null || break; sleep 0.1; done
    RPID=
}
rcli() { redis-cli -s "$SOCK" "$@"; }
