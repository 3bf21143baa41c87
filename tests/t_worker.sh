#!/bin/sh
# t_worker.sh: computations handed to workers over Redis Streams, against a
# real redis-server on a Unix socket and `stylefs worker` processes
# (OMP_NUM_THREADS=1 each): two compute=remote mounts and two workers
# compute 8 cold files once, all in workers, the bytes stylize's; nothing
# but the workers' blocked reads and heartbeats while idle; a worker
# killed with -9 mid-job has its job finished by another; a job for a
# style the worker has with another digest is refused at once; no workers
# (auto: local at once; remote: EIO after offload_timeout); Redis stopped
# and restarted under compute=auto.
W=$1
. tests/lib.sh
SRC=$W/src SOCK=$W/redis.sock
mkdir -p "$SRC"

if ! fuse_usable; then
    skip "worker tests" "/dev/fuse or fusermount3 unusable here"
    finish
fi
WHAT="worker tests"
. tests/lib_redis.sh
WPIDS=
# worker_start NAME [OPTS...]: a worker logging to $W/NAME.log; its pid in WPID
worker_start() {
    n=$1; shift
    OMP_NUM_THREADS=1 ./stylefs worker --redis "unix:$SOCK" --styles "$STYLES" --arbitrary "$SHARED/arbitrary" \
        --id "$n" -v "$@" \
        >"$W/$n.log" 2>&1 &
    WPID=$!
    WPIDS="$WPIDS $WPID"
    for i in $(seq 50); do grep -q "waiting for jobs" "$W/$n.log" && return 0; sleep 0.1; done
    return 1
}
workers_stop() {
    for p in $WPIDS; do kill "$p" 2>/dev/null; done
    for p in $WPIDS; do wait "$p" 2>/dev/null; done
    WPIDS=
}
mount_as() {
    x=$1; shift
    MNT=$W/m$x CACHE=$W/c$x LOG=$W/log$x
    mkdir -p "$MNT"
    mount_it -o redis=unix:$SOCK "$@" || return 1
    eval "PID_$x=\$PID"
}
umount_as() {
    MNT=$W/m$1; eval "PID=\$PID_$1"
    unmount_it || { fusermount3 -u -z "$MNT" 2>/dev/null; kill -9 "$PID" 2>/dev/null; }
}
stat_of() { sed -n "s/^$2 //p" "$W/m$1/.stats"; }
cleanup() {
    for x in A B C D E F G H I; do fusermount3 -u -z "$W/m$x" 2>/dev/null; done
    for p in $WPIDS; do kill -9 "$p" 2>/dev/null; done
    redis_stop
}
trap cleanup EXIT

for i in 1 2 3 4 5 6 7 8; do $MK 192 144 "$SRC/cold$i.jpg" --seed $((700 + i)); done
$MK 1600 1200 "$SRC/big.jpg" --seed 720
for i in 1 2 3; do $MK 96 72 "$SRC/late$i.png" --seed $((730 + i)); done
$MK 96 72 "$SRC/flush.png" --seed 740
$MK 20000 20000 "$SRC/bomb.png" --bomb   # 400 MP of zeros in ~390 KB
for f in $(ls "$SRC"); do
    $SF stylize --styles "$STYLES" --no-cache udnie "$SRC/$f" "$W/ref_$f" 2>/dev/null
done

if ! redis_start; then
    fail "redis starts" "$(tail -3 "$W/redis.log")"
    finish
fi
if ! worker_start w1 || ! worker_start w2; then
    fail "two workers start" "$(tail -2 "$W/w1.log" "$W/w2.log")"
    finish
fi
pass "two workers start and wait for jobs"

# --- two compute=remote mounts, 16 readers each over 8 cold files -------------------------------
if ! mount_as A -o compute=remote || ! mount_as B -o compute=remote; then
    fail "two compute=remote mounts" "$(tail -2 "$W/logA" "$W/logB")"
    finish
fi
pids=
for x in A B; do
    for r in $(seq 0 15); do
        f=cold$((r % 8 + 1)).jpg
        cat "$W/m$x/styled/udnie/$f" >"$W/got_${x}_$r" 2>/dev/null & pids="$pids $!"
    done
done
wait $pids
ok=1
for x in A B; do
    for r in $(seq 0 15); do cmp -s "$W/got_${x}_$r" "$W/ref_cold$((r % 8 + 1)).jpg" || ok=0; done
done
n1=$(grep -c ' computed in ' "$W/w1.log") n2=$(grep -c ' computed in ' "$W/w2.log")
[ $ok = 1 ] && [ $((n1 + n2)) = 8 ] && [ "$(stat_of A computes)" = 0 ] && [ "$(stat_of B computes)" = 0 ] &&
    pass "32 readers of 8 cold files through 2 compute=remote mounts: 8 computations, all in workers ($n1 + $n2), every image stylize's bytes" ||
    fail "compute=remote: 8 computations in workers" "ok=$ok workers $n1+$n2; A: $(tr '\n' ' ' <"$W/mA/.stats"); $(tail -2 "$W/logA")"
[ "$(($(stat_of A offloaded) + $(stat_of B offloaded)))" -ge 8 ] && [ "$(stat_of A offload_fallbacks)" = 0 ] &&
    pass ".stats counts offloaded ($(stat_of A offloaded) + $(stat_of B offloaded)), offload_fallbacks 0, offload_wait_ms $(stat_of A offload_wait_ms)" ||
    fail ".stats offload counters" "$(grep offload "$W/mA/.stats" | tr '\n' ' ')"
./stylefs stats --cache "$W/cA" --redis "unix:$SOCK" >"$W/stats.out" 2>&1
grep -q '^workers: 2$' "$W/stats.out" && grep -q '^worker: w1 device=' "$W/stats.out" && grep -q '^queued jobs: 0$' "$W/stats.out" &&
    pass "stats --redis lists the 2 workers and an empty queue" || fail "stats --redis: workers" "$(cat "$W/stats.out")"

# --- idle: only the workers' blocked reads and heartbeats -----------------------------------------
sleep 1
timeout 3 redis-cli -s "$SOCK" monitor >"$W/monitor" 2>/dev/null
# (the heartbeat is one EVAL; the commands it runs show as "[0 lua]")
others=$(grep '^[0-9]' "$W/monitor" | grep -v -e xautoclaim -e '"XREADGROUP"' -e ' \[0 lua\] ' | head -3)
beats=$(grep '"EVAL"' "$W/monitor" | grep -c xautoclaim)
[ -z "$others" ] && pass "idle 3 s: no Redis command but the workers' heartbeats ($beats, one per worker every 5 s)" ||
    fail "idle: no Redis traffic" "$others"

# --- the job stream flushed (FLUSHALL, or evicted under allkeys-lru) while workers wait ------------
rcli flushall >/dev/null
cat "$W/mA/styled/udnie/flush.png" >"$W/got_flush" 2>/dev/null
cmp -s "$W/got_flush" "$W/ref_flush.png" && [ "$(stat_of A computes)" = 0 ] &&
    pass "the job stream flushed while the workers wait: they make their group again and take the next job" ||
    fail "a flushed job stream" "$(tail -1 "$W/logA"); $(tail -1 "$W/w1.log")"
umount_as A
umount_as B

# --- a worker killed with -9 mid-job: another finishes it ----------------------------------------
workers_stop
worker_start w3 --redis-lease 2 || fail "worker w3 starts" "$(tail -2 "$W/w3.log")"
W3=$WPID
mount_as C -o compute=remote,redis_lease=2 || fail "mount C" "$(tail -2 "$W/logC")"
cat "$W/mC/styled/udnie/big.jpg" >"$W/got_big" 2>"$W/big.err" &
reader=$!
started=0
for i in $(seq 100); do grep -q 'computing' "$W/w3.log" && { started=1; break; }; sleep 0.05; done
kill -9 $W3
WPIDS=
worker_start w4 --redis-lease 2 || fail "worker w4 starts" "$(tail -2 "$W/w4.log")"
wait $reader
cmp -s "$W/got_big" "$W/ref_big.jpg" && [ $started = 1 ] && grep -q ' computed in ' "$W/w4.log" &&
    pass "a worker killed with -9 mid-job: another takes the job after the lease, and the reader gets the right image" ||
    fail "kill -9 mid-job" "started=$started; $(cat "$W/big.err"); w4: $(tail -2 "$W/w4.log"); C: $(tail -2 "$W/logC")"
umount_as C

# --- a style the worker has with another digest: refused at once ----------------------------------
mkdir -p "$W/styles2"
ln -s "$(cd "$STYLES/wave" && pwd)" "$W/styles2/udnie"
STYLES_SAVE=$STYLES STYLES=$W/styles2
t0=$(ms)
if mount_as D -o compute=remote,offload_timeout=20; then
    cat "$W/mD/styled/udnie/late1.png" >/dev/null 2>&1; st=$?
    t1=$(ms)
    [ $st != 0 ] && [ $((t1 - t0)) -lt 10000 ] && grep -q "digests differ" "$W/logD" &&
        pass "a job for a style whose digest the worker does not have is refused: the read fails in $((t1 - t0)) ms, saying why" ||
        fail "a job with another digest is refused" "status $st in $((t1 - t0)) ms; $(tail -2 "$W/logD")"
    umount_as D
else
    fail "mount D" "$(tail -2 "$W/logD")"
fi
STYLES=$STYLES_SAVE

# --- a painting the worker's folders lack comes as bytes with the job -----------------------------
mkdir -p "$W/paint"
$MK 128 128 "$W/paint/klee.jpg" --seed 750
ln -s "$(cd "$SHARED/arbitrary" && pwd)" "$W/paint/arbitrary"
$SF stylize --styles "$W/paint" --no-cache klee "$SRC/late1.png" "$W/ref_klee.png" 2>/dev/null
$SF stylize --styles "$W/paint" --no-cache klee@50 "$SRC/late2.png" "$W/ref_klee50.png" 2>/dev/null
STYLES_SAVE=$STYLES STYLES=$W/paint
mount_as I -o compute=remote || fail "mount I" "$(tail -2 "$W/logI")"
STYLES=$STYLES_SAVE
cat "$W/mI/styled/klee/late1.png" >"$W/got_klee" 2>/dev/null
cat "$W/mI/styled/klee@50/late2.png" >"$W/got_klee50" 2>/dev/null
cmp -s "$W/got_klee" "$W/ref_klee.png" && cmp -s "$W/got_klee50" "$W/ref_klee50.png" &&
    [ "$(stat_of I computes)" = 0 ] && [ "$(grep -c 'loaded from a job' "$W/w4.log")" = 2 ] &&
    pass "a painting style the worker lacks comes with the job as bytes: klee and klee@50 computed there, stylize's bytes" ||
    fail "a painting from the job's bytes" "$(grep -i 'klee' "$W/w4.log" | tail -2); $(tail -1 "$W/logI")"
umount_as I

# --- a hostile job (a decompression bomb) is refused by the worker's guards; the worker lives on ----
mount_as H -o compute=remote || fail "mount H" "$(tail -2 "$W/logH")"
t0=$(ms); cat "$W/mH/styled/udnie/bomb.png" >/dev/null 2>&1; st=$?; t1=$(ms)
cat "$W/mH/styled/udnie/late2.png" >"$W/got_late2h" 2>/dev/null
[ $st != 0 ] && [ $((t1 - t0)) -lt 10000 ] && grep -q "refused: .*megapixels" "$W/w4.log" && kill -0 $WPID &&
    cmp -s "$W/got_late2h" "$W/ref_late2.png" &&
    pass "a decompression bomb handed to a worker: refused by max_pixels in $((t1 - t0)) ms, the worker serves the next job" ||
    fail "a hostile job" "status $st in $((t1 - t0)) ms; $(grep bomb "$W/w4.log" | tail -1); $(tail -1 "$W/logH")"
umount_as H

# --- back-pressure, and a worker alive that never answers (prefix bp:, a fake heartbeat) --------
rcli set bp:workers 1 px 60000 >/dev/null
rcli xadd bp:jobs '*' key stale >/dev/null
mount_as B -o compute=auto,redis_prefix=bp:,offload_max=1,offload_timeout=2 || fail "mount B (bp:)" "$(tail -2 "$W/logB")"
t0=$(ms); cat "$W/mB/styled/udnie/late1.png" >"$W/got_bp1"; t1=$(ms)
cmp -s "$W/got_bp1" "$W/ref_late1.png" && [ "$(stat_of B offload_fallbacks)" = 1 ] && [ $((t1 - t0)) -lt 1500 ] &&
    pass "compute=auto with the queue at offload_max: computed here at once ($((t1 - t0)) ms)" ||
    fail "offload_max" "$((t1 - t0)) ms; $(grep offload "$W/mB/.stats" | tr '\n' ' ')"
umount_as B
mount_as B -o compute=auto,redis_prefix=bp:,offload_max=5,offload_timeout=2 || fail "mount B (bp:)" "$(tail -2 "$W/logB")"
t0=$(ms); cat "$W/mB/styled/udnie/late3.png" >"$W/got_bp3"; t1=$(ms)
cmp -s "$W/got_bp3" "$W/ref_late3.png" && [ "$(stat_of B offload_fallbacks)" = 1 ] && [ $((t1 - t0)) -ge 2000 ] &&
    grep -q "no worker did it within offload_timeout=2; computing here" "$W/logB" &&
    pass "compute=auto with a worker alive that never answers: computed here after offload_timeout=2 ($((t1 - t0)) ms)" ||
    fail "auto falls back after offload_timeout" "$((t1 - t0)) ms; $(tail -1 "$W/logB")"
umount_as B

# --- no workers (another prefix): auto computes here at once; remote fails after offload_timeout --
mount_as E -o compute=auto,redis_prefix=none: || fail "mount E" "$(tail -2 "$W/logE")"
t0=$(ms); cat "$W/mE/styled/udnie/late2.png" >"$W/got_late2"; t1=$(ms)
cmp -s "$W/got_late2" "$W/ref_late2.png" && [ "$(stat_of E computes)" = 1 ] && [ "$(stat_of E offload_fallbacks)" = 1 ] &&
    pass "no workers and compute=auto: computed here at once ($((t1 - t0)) ms), offload_fallbacks 1" ||
    fail "no workers, auto" "$(tr '\n' ' ' <"$W/mE/.stats")"
umount_as E
mount_as F -o compute=remote,redis_prefix=none:,offload_timeout=2 || fail "mount F" "$(tail -2 "$W/logF")"
t0=$(ms); cat "$W/mF/styled/udnie/late3.png" >/dev/null 2>"$W/late3.err"; st=$?; t1=$(ms)
[ $st != 0 ] && grep -q "Input/output error" "$W/late3.err" && grep -q "compute=remote: no worker did it within offload_timeout=2" "$W/logF" &&
    pass "no workers and compute=remote: EIO after offload_timeout=2 ($((t1 - t0)) ms), one log line" ||
    fail "no workers, remote" "status $st; $(cat "$W/late3.err"); $(tail -2 "$W/logF")"
umount_as F

# --- redis=unix:RELATIVE, from the folder the mount was started in (it then leaves it for /) -----
mkdir -p "$W/mG"
top=$PWD
case $STYLES in /*) abs_styles=$STYLES ;; *) abs_styles=$top/$STYLES ;; esac
(cd "$W" && exec "$top/stylefs" -f -o styles="$abs_styles",cache=cG,redis=unix:redis.sock,compute=remote \
    "$SRC" mG 2>"$W/logG") &
gpid=$!
for i in $(seq 50); do [ -d "$W/mG/styled" ] && break; sleep 0.1; done
# a restart makes the mount connect again, from / by then
redis_stop
redis_start || fail "redis restarts" "$(tail -2 "$W/redis.log")"
for i in 1 2 3 4 5; do
    sleep 1
    cat "$W/mG/styled/udnie/late2.png" >"$W/got_late2g" 2>/dev/null && break
done
cmp -s "$W/got_late2g" "$W/ref_late2.png" && [ "$(sed -n 's/^offloaded //p' "$W/mG/.stats")" = 1 ] &&
    pass "redis=unix:redis.sock (relative): the mount reconnects to it after leaving its folder, and a worker computes" ||
    fail "redis= relative socket" "$(tail -2 "$W/logG")"
fusermount3 -u "$W/mG"; wait $gpid

# --- Redis stopped and restarted under compute=auto ---------------------------------------------
mount_as A -o compute=auto,redis_timeout=300 || fail "mount A again" "$(tail -2 "$W/logA")"
redis_stop
cat "$W/mA/styled/udnie/late1.png" >"$W/got_late1" 2>/dev/null
ok1=$?
redis_start || fail "redis restarts" "$(tail -2 "$W/redis.log")"
sleep 1.5
cat "$W/mA/styled/udnie/late3.png" >"$W/got_late3" 2>/dev/null
[ $ok1 = 0 ] && [ $? = 0 ] && cmp -s "$W/got_late1" "$W/ref_late1.png" && cmp -s "$W/got_late3" "$W/ref_late3.png" &&
    pass "compute=auto with Redis stopped, then restarted: reads succeed with the right bytes" ||
    fail "compute=auto across a Redis restart" "$(tail -3 "$W/logA")"
umount_as A
ps -o pid,stat,args -p $WPIDS >"$W/ps.before" 2>&1
workers_stop
grep -q "stopped: " "$W/w4.log" && pass "a worker stops on SIGTERM, saying what it did ($(grep -o 'stopped: .*' "$W/w4.log"))" ||
    fail "worker stops on SIGTERM" "$(tail -2 "$W/w4.log"); $(cat "$W/ps.before")"
finish
