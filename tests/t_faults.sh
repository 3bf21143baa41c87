#!/bin/sh
# t_faults.sh: faults and load through real mounts.
#   kill -9 during 32 cold reads, then a remount: every entry whole and
#   byte-identical to a fresh computation, the cache checks clean;
#   a 1 MB cache_max; a full disk under the cache (a 1 MB tmpfs: evicts, says so);
#   64 readers over 200 files x 3 styles while `prune --max-size` loops:
#   no errors, one computation per key, bytes stable, RSS reported.
# STRESS_SECONDS sets the load phase's length (default 40; make stress: 180).
W=$1
. tests/lib.sh
SRC=$W/src MNT=$W/mnt CACHE=$W/cache LOG=$W/daemon.log
mkdir -p "$SRC" "$MNT"
if ! fuse_usable; then
    skip "fault tests" "/dev/fuse or fusermount3 unusable here"
    finish
fi

# --- kill -9 in the middle of 32 cold reads ---------------------------------------
for i in $(seq 32); do $MK 160 120 "$SRC/k$i.jpg" --seed $((200 + i)); done
mount_it || { fail "mount" "$(tail -3 "$LOG")"; finish; }
rs=""
for i in $(seq 32); do cat "$MNT/styled/udnie/k$i.jpg" >"$W/k$i.out" 2>/dev/null & rs="$rs $!"; done
sleep 0.6
kill -9 $PID
wait $rs 2>/dev/null
fusermount3 -u "$MNT" 2>/dev/null
stored=$($SF stats --cache "$CACHE" 2>/dev/null | sed -n 's/^entries: *//p')
# a positive control: the kill must have come after some entries were stored
$SF stats --cache "$CACHE" --verify >"$W/verify" 2>&1 && [ "${stored:-0}" -gt 0 ] &&
    pass "kill -9: the cache checks clean ($stored of 32 entries stored before the kill; $(sed -n 's/^verified: *//p' "$W/verify"))" ||
    fail "kill -9: the cache checks clean, with entries stored before the kill" "stored ${stored:-0}: $(cat "$W/verify")"
half=0
for i in $(seq 32); do [ -s "$W/k$i.out" ] && half=$((half + 1)); done
mount_it || { fail "kill -9: remount" "$(tail -3 "$LOG")"; finish; }
bad=0
for i in $(seq 32); do
    $SF stylize --styles "$STYLES" --no-cache udnie "$SRC/k$i.jpg" "$W/fresh.jpg" 2>/dev/null
    cmp -s "$MNT/styled/udnie/k$i.jpg" "$W/fresh.jpg" || bad=$((bad + 1))
    # what the killed readers got is whole or nothing
    [ ! -s "$W/k$i.out" ] || cmp -s "$W/k$i.out" "$W/fresh.jpg" || bad=$((bad + 1))
done
[ $bad = 0 ] && pass "kill -9: after remount all 32 read back byte-identical to a fresh computation ($half readers had finished before the kill)" ||
    fail "kill -9: after remount all 32 read back right" "$bad differ"
unmount_it

# --- a tiny cache_max ------------------------------------------------------------------
rm -rf "$SRC"/* "$CACHE"
for i in $(seq 12); do $MK 320 240 "$SRC/t$i.png" --seed $((300 + i)); done
mount_it -o cache_max=1M -v
bad=0
for i in $(seq 12); do
    $SF stylize --styles "$STYLES" --no-cache udnie "$SRC/t$i.png" "$W/fresh.png" 2>/dev/null
    cmp -s "$MNT/styled/udnie/t$i.png" "$W/fresh.png" || bad=$((bad + 1))
done
# the cache is trimmed by its own thread, not inside the readers' open()
trimmer=$(cat /proc/$PID/task/*/comm 2>/dev/null | grep -c '^sf-cache-trim$')
unmount_it
grep -q 'cache_max: evicted' "$LOG" && [ "$trimmer" = 1 ] &&
    pass "cache_max=1M: evictions happen on the trimmer thread, off the readers' path" ||
    fail "cache_max=1M: evictions on the trimmer thread" "trimmer threads: $trimmer; log: $(grep -c 'cache_max' "$LOG") cache_max lines"
bytes=$($SF stats --cache "$CACHE" | sed -n 's/^bytes: *\([0-9]*\).*/\1/p')
[ $bad = 0 ] && [ "$bytes" -le $((1024 * 1024)) ] &&
    pass "cache_max=1M: 12 reads of ~190 KB images all right; the cache holds $bytes bytes" ||
    fail "cache_max=1M" "$bad reads wrong; cache $bytes bytes"

# --- a full disk under the cache -------------------------------------------------------
rm -rf "$CACHE"; mkdir -p "$CACHE"
if mount -t tmpfs -o size=1m stylefs-test "$CACHE" 2>/dev/null; then
    mount_it -v -o cache_max=0
    bad=0
    for i in $(seq 12); do
        $SF stylize --styles "$STYLES" --no-cache udnie "$SRC/t$i.png" "$W/fresh.png" 2>/dev/null
        cmp -s "$MNT/styled/udnie/t$i.png" "$W/fresh.png" || bad=$((bad + 1))
    done
    alive=$(kill -0 $PID 2>/dev/null && echo yes)
    unmount_it
    n=$(grep -c "disk full, evicted" "$LOG")
    [ $bad = 0 ] && [ "$alive" = yes ] && [ "$n" -gt 0 ] && grep -q "the disk is full" "$LOG" &&
        ! grep -q "Input/output error" "$LOG" &&
        pass "full disk: 12 reads right with the cache's 1 MB filesystem full; 'the disk is full' logged, $n evictions made room" ||
        fail "full disk" "$bad reads wrong, alive=$alive, $n evictions: $(grep cache "$LOG" | tail -3)"
    # The newest read was kept: the eviction made room for it.
    mount_it
    h0=$(counter hits); cat "$MNT/styled/udnie/t12.png" >/dev/null; h1=$(counter hits)
    unmount_it
    [ "$h1" = $((h0 + 1)) ] && pass "full disk: the newest image is a hit after a remount (older ones evicted)" ||
        fail "full disk: the newest image is cached" "hits $h0 -> $h1; $(grep -i 'cache' "$LOG" | tail -3)"
    $SF stats --cache "$CACHE" --verify >"$W/verify" 2>&1 && pass "full disk: the cache checks clean ($(sed -n 's/^verified: *//p' "$W/verify"))" ||
        fail "full disk: the cache checks clean" "$(cat "$W/verify")"
    umount "$CACHE"
else
    skip "full disk" "cannot mount a tmpfs here (needs root)"
fi

# --- the default cache_max: a tenth of the cache's filesystem (a 10 MB tmpfs) -----------
rm -rf "$CACHE"; mkdir -p "$CACHE"
if mount -t tmpfs -o size=10m stylefs-test "$CACHE" 2>/dev/null; then
    : >"$LOG"
    mount_it -v
    for i in $(seq 12); do cat "$MNT/styled/udnie/t$i.png" >/dev/null; done
    unmount_it
    bytes=$($SF stats --cache "$CACHE" | sed -n 's/^bytes: *\([0-9]*\).*/\1/p')
    grep -q "cache_max: 1.0 MiB, a tenth of the filesystem" "$LOG" && [ "$bytes" -le $((1024 * 1024)) ] &&
        pass "default cache_max: a tenth of a 10 MB disk (1.0 MiB, said in the log); the cache holds $bytes bytes after 12 reads" ||
        fail "default cache_max" "cache $bytes bytes; log: $(grep cache_max "$LOG" | head -2)"
    umount "$CACHE"
else
    skip "default cache_max" "cannot mount a tmpfs here (needs root)"
fi

# --- load: 64 readers, 200 files, 3 styles, prune looping -------------------------------
rm -rf "$SRC"/* "$CACHE"
for i in $(seq 200); do echo "$i"; done | while read -r i; do $MK 40 32 "$SRC/f$i.png" --seed $((400 + i)); done
STY="udnie wave scream"
# load_phase MAX_SIZE SECONDS READERS LOGPREFIX: READERS loops of random
# reads (20 at a time) of the keys until SECONDS pass, each logging
# "key md5" or "key ERROR", while prune --max-size MAX_SIZE loops; the
# daemon's RSS is sampled every 4 s into memory.log.
load_phase() {
    end=$(($(date +%s) + $2))
    (while [ "$(date +%s)" -lt $end ]; do $SF prune --cache "$CACHE" --max-size $1 >/dev/null 2>>"$W/prune.err"; done) &
    pr=$!
    (while kill -0 $pr 2>/dev/null; do rss_kb $PID VmRSS; sleep 4; done >"$W/memory.log") &
    rs="$pr $!"
    for r in $(seq $3); do
        (while [ "$(date +%s)" -lt $end ]; do
             for k in $(shuf -n 20 "$W/keys"); do
                 if s=$(md5sum <"$MNT/styled/$k" 2>/dev/null); then echo "$k ${s%% *}"; else echo "$k ERROR"; fi
             done
         done >"$W/$4$r.log") &
        rs="$rs $!"
    done
    wait $rs
}
for s in $STY; do for i in $(seq 200); do echo "$s/f$i.png"; done; done >"$W/keys"
mount_it
hwm0=$(rss_kb $PID VmRSS)
load_phase 1G "${STRESS_SECONDS:-40}" 64 r
rss1=$(rss_kb $PID VmRSS)
samples=$(tr '\n' ' ' <"$W/memory.log")
reads=$(cat "$W"/r*.log | wc -l)
errs=$(cat "$W"/r*.log | grep -c ERROR)
keys=$(cat "$W"/r*.log | cut -d' ' -f1 | sort -u | wc -l)
variants=$(cat "$W"/r*.log | sort -u | wc -l)
computes=$(counter computes); errors=$(counter errors); joins=$(counter joins)
echo "figure: load: $reads reads by 64 readers in ${STRESS_SECONDS:-40} s, $keys keys, $computes computes, $joins joins, daemon RSS $hwm0 -> $rss1 kB (every 4 s: $samples)"
[ "$errs" = 0 ] && [ "$errors" = 0 ] && [ "$reads" -gt 0 ] && pass "load: $reads reads, 0 errors" || fail "load: no errors" "$errs failed reads, errors counter $errors"
[ "$computes" = "$keys" ] && pass "load: exactly one computation per key ($computes for $keys keys)" ||
    fail "load: exactly one computation per key" "$computes computes for $keys keys"
[ "$variants" = "$keys" ] && pass "load: every key read back the same bytes every time" ||
    fail "load: every key read back the same bytes" "$variants distinct (key, bytes) for $keys keys"
[ ! -s "$W/prune.err" ] && pass "load: prune ran alongside without an error" || fail "load: prune ran alongside" "$(head -3 "$W/prune.err")"

# evicting while reading: a small max-size makes reads miss again and recompute
load_phase 100K 10 16 e
wrong=$(cat "$W"/r*.log | awk 'FNR == NR { if ($2 != "ERROR") want[$1] = $2; next }
    $2 != "ERROR" && ($1 in want) && want[$1] != $2 { n++ } END { print n + 0 }' - "$W"/e*.log)
errs=$(cat "$W"/e*.log | grep -c ERROR)
c2=$(counter computes)
ereads=$(cat "$W"/e*.log | wc -l)
# positive controls: reads happened, and eviction made keys already
# computed in the first phase compute again (computations beyond the keys
# that are new in this phase)
cut -d' ' -f1 "$W"/r*.log | sort -u >"$W/keys-r"
newkeys=$(cut -d' ' -f1 "$W"/e*.log | sort -u | comm -13 "$W/keys-r" - | wc -l)
recomputed=$((c2 - computes - newkeys))
[ "$errs" = 0 ] && [ "$wrong" = 0 ] && [ "$ereads" -gt 0 ] && [ "$recomputed" -gt 0 ] &&
    pass "load with eviction: $ereads reads while prune evicted, $recomputed evicted entries recomputed, 0 errors, every image the same bytes as before" ||
    fail "load with eviction" "$errs errors, $wrong reads differ from before, $ereads reads, $recomputed recomputed (both must be > 0)"
unmount_it
$SF stats --cache "$CACHE" --verify >"$W/verify" 2>&1 && pass "load: the cache checks clean afterwards" ||
    fail "load: the cache checks clean afterwards" "$(cat "$W/verify")"
finish
