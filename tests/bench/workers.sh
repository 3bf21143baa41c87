#!/bin/sh
# workers.sh: the worker pool's figures (make bench runs it last): a real
# redis-server on a Unix socket, `stylefs worker` processes with
# OMP_NUM_THREADS=1 each, and one compute=remote mount.
#   - throughput at 1 MP: 8 cold 1024x1024 files read at once, with 1 and
#     then 2 workers, in images per second; beside it a compute=local mount
#     (OMP_NUM_THREADS=2) on the same 8 files;
#   - the latency an offloaded read adds: 5 cold 256x256 reads, one at a
#     time, through a compute=remote mount with one idle worker, against a
#     compute=local mount (both OMP_NUM_THREADS=1), medians.
# Needs FUSE and redis-server; says so and stops otherwise.
set -u
SHARED=${SHARED:-../shared}
STYLES=$SHARED/models
B=build/bench/workers
MK=build/tests/mkimg
command -v redis-server >/dev/null || { echo "workers: redis-server not installed (make deps); not run"; exit 0; }
[ -c /dev/fuse ] || { echo "workers: no /dev/fuse; not run"; exit 0; }
rm -rf "$B"
mkdir -p "$B/src1" "$B/src256"
SOCK=$B/r.sock
ms() { echo $(($(date +%s%N) / 1000000)); }
redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no --logfile "$B/redis.log" &
RPID=$!
for i in $(seq 50); do [ "$(redis-cli -s "$SOCK" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
WP=
cleanup() {
    for m in "$B"/m*; do fusermount3 -u -z "$m" 2>/dev/null; done
    for p in $WP; do kill "$p" 2>/dev/null; done
    kill "$RPID" 2>/dev/null
}
trap cleanup EXIT
workers() {     # workers N: exactly N running
    for p in $WP; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    WP=
    for i in $(seq "$1"); do
        OMP_NUM_THREADS=1 ./stylefs worker --redis "unix:$SOCK" --styles "$STYLES" --id "b$i" >"$B/w$i.log" 2>&1 &
        WP="$WP $!"
    done
    for i in $(seq "$1"); do
        for t in $(seq 50); do grep -q "waiting for jobs" "$B/w$i.log" && break; sleep 0.1; done
    done
}
# mnt NAME OMP OPTS: a mount of $SRCDIR on $B/mNAME with its own cache
mnt() {
    mkdir -p "$B/m$1"
    OMP_NUM_THREADS=$2 ./stylefs -f -o styles="$STYLES",cache="$B/c$1",max_side=0,redis=unix:$SOCK,$3 \
        "$SRCDIR" "$B/m$1" 2>"$B/log$1" &
    for t in $(seq 50); do [ -d "$B/m$1/styled" ] && return 0; sleep 0.1; done
    return 1
}
umnt() { fusermount3 -u "$B/m$1"; sleep 0.3; }

echo "worker pool on $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; Redis on a Unix socket"
# throughput: 8 cold 1 MP files read at once
for i in $(seq 8); do $MK 1024 1024 "$B/src1/p$i.png" --seed $((900 + i)); done
SRCDIR=$B/src1
run8() {    # run8 NAME: the 8 files through mount NAME at once; prints images/s
    t0=$(ms)
    for i in $(seq 8); do cat "$B/m$1/styled/udnie/p$i.png" >/dev/null & done
    wait
    t1=$(ms)
    awk -v t=$((t1 - t0)) 'BEGIN { printf "%.2f images/s (%.2f s for 8)", 8000 / t, t / 1000 }'
}
redis-cli -s "$SOCK" flushall >/dev/null
mnt L 2 compute=local && echo "  local mount (compute=local, 2 threads): $(run8 L)"; umnt L
for n in 1 2; do
    redis-cli -s "$SOCK" flushall >/dev/null
    workers $n
    mnt R$n 1 compute=remote && echo "  $n worker(s) (1 thread each), compute=remote: $(run8 R$n)"; umnt R$n
done
# latency: 5 cold 256x256 reads, one at a time
for i in $(seq 5); do $MK 256 256 "$B/src256/s$i.png" --seed $((950 + i)); done
SRCDIR=$B/src256
lat() {     # lat NAME: median ms of 5 cold reads through mount NAME
    for i in $(seq 5); do
        t0=$(date +%s%N); cat "$B/m$1/styled/udnie/s$i.png" >/dev/null; t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000))
    done | sort -n | sed -n 3p
}
redis-cli -s "$SOCK" flushall >/dev/null
workers 1
mnt LL 1 compute=local && local_us=$(lat LL); umnt LL
redis-cli -s "$SOCK" flushall >/dev/null
mnt RL 1 compute=remote && remote_us=$(lat RL); umnt RL
awk -v l="${local_us:-0}" -v r="${remote_us:-0}" 'BEGIN { printf "  256x256 cold read, median of 5: local %.1f ms, offloaded to 1 idle worker %.1f ms: %+.1f ms added\n", l / 1000, r / 1000, (r - l) / 1000 }'
