#!/bin/sh
# t_mount.sh: the filesystem, through real FUSE mounts: the tree, listing
# without stylizing, bytes equal to `stylefs stylize`, exact sizes and
# mmap, one computation per key under concurrency, errors, changed
# sources, unmount while idle and while busy.
W=$1
. tests/lib.sh
SRC=$W/src MNT=$W/mnt CACHE=$W/cache LOG=$W/daemon.log
mkdir -p "$SRC/sub/deeper" "$SRC/empty dir" "$MNT"

if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
    skip "mount tests" "/dev/fuse or fusermount3 unusable here"
    finish
fi

$MK 64 48 "$SRC/a.jpg" --seed 1
$MK 64 48 "$SRC/b.png" --seed 2 --alpha
$MK 40 30 "$SRC/sub/c.ppm" --seed 3
$MK 40 30 "$SRC/sub/deeper/D.JPG" --seed 4
$MK 50 40 "$SRC/png-named.jpg.tmp.png" --seed 5 && mv "$SRC/png-named.jpg.tmp.png" "$SRC/png-named.jpg"
echo "not an image" >"$SRC/broken.jpg"
echo "notes" >"$SRC/notes.txt"
for i in 1 2 3 4 5 6 7 8; do $MK 32 32 "$SRC/sub/many$i.png" --seed $((10 + i)); done


if ! mount_it; then
    if grep -qiE "fuse: device not found|/dev/fuse|Operation not permitted" "$LOG"; then
        skip "mount tests" "FUSE unusable: $(tail -1 "$LOG")"
        finish
    fi
    fail "mount" "$(tail -3 "$LOG")"
    finish
fi
pass "mount starts"

# --- the tree, and listing does not stylize ---------------------------------------------
[ "$(ls "$MNT")" = styled ] && pass "tree: the root holds styled/" || fail "tree: the root holds styled/" "$(ls "$MNT")"
[ "$(ls "$MNT/styled" | tr '\n' ' ')" = "$(ls "$STYLES" | grep -v README | tr '\n' ' ')" ] &&
    pass "tree: styled/ lists one directory per style" || fail "tree: styled/ lists one directory per style" "$(ls "$MNT/styled")"
got=$(cd "$MNT/styled/udnie" && find . | sort | tr '\n' ' ')
want=". ./a.jpg ./b.png ./broken.jpg ./empty dir ./png-named.jpg ./sub ./sub/c.ppm.png ./sub/deeper ./sub/deeper/D.JPG ./sub/many1.png ./sub/many2.png ./sub/many3.png ./sub/many4.png ./sub/many5.png ./sub/many6.png ./sub/many7.png ./sub/many8.png "
[ "$got" = "$want" ] && pass "tree: mirrors SOURCE, images only, unwritable formats as .png" ||
    fail "tree: mirrors SOURCE, images only, unwritable formats as .png" "got: $got"
ls -lR "$MNT/styled" >/dev/null; stat "$MNT/styled/wave/a.jpg" >/dev/null; find "$MNT" -type f >/dev/null
[ "$(counter computes)" = 0 ] && [ "$(counter misses)" = 0 ] && pass "listing (ls -lR, stat, find) does not stylize" ||
    fail "listing (ls -lR, stat, find) does not stylize" "$(cat "$MNT/.stats")"
m=$(stat -c %Y "$SRC/a.jpg"); [ "$(stat -c %Y "$MNT/styled/udnie/a.jpg")" = "$m" ] &&
    pass "files carry the source's timestamps" || fail "files carry the source's timestamps" "mtime differs"
stat -c %A "$MNT/styled/udnie/a.jpg" | grep -q '^-r--r--r--$' && pass "files are read-only" || fail "files are read-only" "$(stat -c %A "$MNT/styled/udnie/a.jpg")"

# --- bytes equal `stylefs stylize` -------------------------------------------------------
for f in a.jpg b.png sub/c.ppm.png sub/deeper/D.JPG png-named.jpg; do
    src=$SRC/${f%.ppm.png}; [ "$src" = "$SRC/$f" ] || src=$SRC/sub/c.ppm
    out=$W/ref.$(echo "$f" | sed 's/.*\.//' | tr A-Z a-z)
    ./stylefs stylize --styles "$STYLES" --no-cache udnie "$src" "$out" 2>/dev/null
    if cmp -s "$MNT/styled/udnie/$f" "$out"; then pass "bytes: cat $f equals stylefs stylize"
    else fail "bytes: cat $f equals stylefs stylize" "differs"; fi
done
./stylefs stylize --styles "$STYLES" --no-cache udnie "$SRC/a.jpg" "$W/ref_a.jpg" 2>/dev/null
cp "$MNT/styled/udnie/a.jpg" "$W/cp.jpg"; dd if="$MNT/styled/udnie/a.jpg" of="$W/dd.jpg" bs=1000 2>/dev/null
cmp -s "$W/cp.jpg" "$W/ref_a.jpg" && cmp -s "$W/dd.jpg" "$W/ref_a.jpg" && pass "bytes: cp and dd agree" || fail "bytes: cp and dd agree" "differs"
$CMP --info "$MNT/styled/udnie/png-named.jpg" | grep -q JPEG && pass "a PNG named .jpg is served as JPEG" ||
    fail "a PNG named .jpg is served as JPEG" "$($CMP --info "$MNT/styled/udnie/png-named.jpg")"
$CMP --info "$MNT/styled/udnie/b.png" | grep -q 'alpha=1' && pass "alpha survives the mount" || fail "alpha survives the mount" "no alpha"

# --- exact sizes and mmap ------------------------------------------------------------------
python3 - "$MNT/styled/scream/sub/many1.png" "$MNT/styled/udnie/a.jpg" >"$W/py" 2>&1 <<'PY'
import mmap, os, sys
p = sys.argv[1]
with open(p, 'rb') as f:                       # cold: stylized by open()
    size = os.fstat(f.fileno()).st_size
    data = f.read()
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    ok = size == len(data) and m[:] == data and f.read() == b''
print("fstat-exact" if ok else "BAD fstat %d read %d" % (size, len(data)))
print("stat-exact" if os.stat(p).st_size == len(data) else "BAD stat after")
with open(sys.argv[2], 'rb') as f:             # warm: from the cache
    d2 = f.read()
print("warm-exact" if os.stat(sys.argv[2]).st_size == len(d2) else "BAD warm")
PY
grep -q fstat-exact "$W/py" && pass "after open(), fstat gives the exact size; read and mmap give those bytes, then EOF" ||
    fail "after open(), fstat gives the exact size; read and mmap give those bytes, then EOF" "$(cat "$W/py")"
grep -q stat-exact "$W/py" && grep -q warm-exact "$W/py" && pass "a stylized file reports its exact size to stat" ||
    fail "a stylized file reports its exact size to stat" "$(cat "$W/py")"

# --- one computation per key --------------------------------------------------------------
c0=$(counter computes)
pids=; for i in $(seq 16); do cat "$MNT/styled/wave/b.png" >"$W/same$i" & pids="$pids $!"; done; wait $pids
c1=$(counter computes)
ok=1; for i in $(seq 16); do cmp -s "$W/same1" "$W/same$i" || ok=0; done
[ $((c1 - c0)) = 1 ] && [ $ok = 1 ] && [ -s "$W/same1" ] && pass "16 readers of one cold file: 1 computation, identical bytes" ||
    fail "16 readers of one cold file: 1 computation, identical bytes" "computes $c0 -> $c1, identical=$ok"
pids=; for i in $(seq 16); do f=$(( (i - 1) % 8 + 1 )); cat "$MNT/styled/la_muse/sub/many$f.png" >"$W/diff$i" & pids="$pids $!"; done; wait $pids
c2=$(counter computes)
ok=1; for i in $(seq 8); do cmp -s "$W/diff$i" "$W/diff$((i + 8))" && [ -s "$W/diff$i" ] || ok=0; done
[ $((c2 - c1)) = 8 ] && [ $ok = 1 ] && pass "16 readers of 8 cold files: 8 computations" ||
    fail "16 readers of 8 cold files: 8 computations" "computes $c1 -> $c2, ok=$ok"
h0=$(counter hits); cat "$MNT/styled/la_muse/sub/many1.png" >/dev/null; h1=$(counter hits)
[ $((h1 - h0)) = 1 ] && [ "$(counter computes)" = "$c2" ] && pass "a second read is a cache hit" || fail "a second read is a cache hit" "$(cat "$MNT/.stats")"

# fstat of an open .stats (its snapshot) and stat of the path: owned like
# the source folder, times of now, never uninitialised memory
if command -v python3 >/dev/null; then
    python3 - "$MNT/.stats" "$SRC" >"$W/fst" 2>&1 <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
a, b, src = os.fstat(fd), os.stat(sys.argv[1]), os.stat(sys.argv[2])
now = time.time()
ok = all(s.st_uid == src.st_uid and s.st_gid == src.st_gid and abs(s.st_mtime - now) < 120
         and abs(s.st_atime - now) < 120 and abs(s.st_ctime - now) < 120 and s.st_mode & 0o777 == 0o444
         for s in (a, b))
n = len(os.read(fd, 4096)); ok = ok and a.st_size == n
print("ok" if ok else "bad", a.st_size, n, b.st_size, oct(a.st_mode), oct(b.st_mode), a.st_uid, a.st_gid, int(a.st_mtime), int(a.st_ctime), b.st_uid, int(b.st_mtime), int(now))
PY
    grep -q '^ok' "$W/fst" && pass "fstat of an open .stats: owner and times set (owner of the source, now)" ||
        fail "fstat of an open .stats: owner and times set" "$(cat "$W/fst")"
else
    skip "fstat of an open .stats" "python3 not installed"
fi

# --- errors -------------------------------------------------------------------------------
expect_status "ENOENT: unknown style" 1 cat "$MNT/styled/nosuch/a.jpg"; expect_err "ENOENT: unknown style message" "No such file"
expect_status "ENOENT: no such source" 1 cat "$MNT/styled/udnie/nope.jpg"; expect_err "ENOENT: no such source message" "No such file"
expect_status "ENOENT: non-image source" 1 cat "$MNT/styled/udnie/notes.txt"
c0=$(counter computes)
expect_status "EIO: undecodable source" 1 cat "$MNT/styled/udnie/broken.jpg"; expect_err "EIO: message" "Input/output error"
grep -q "broken.jpg: not an image" "$LOG" && pass "EIO: one log line names the file and the reason" || fail "EIO: one log line names the file and the reason" "$(tail -2 "$LOG")"
n=$(grep -c "broken.jpg" "$LOG")
cat "$MNT/styled/udnie/broken.jpg" 2>/dev/null; cat "$MNT/styled/udnie/broken.jpg" 2>/dev/null
c1=$(counter computes)
[ "$(grep -c "broken.jpg" "$LOG")" = "$n" ] && [ "$c1" = $((c0 + 1)) ] &&
    pass "EIO: a failure is remembered (one attempt for three reads, no new log line)" ||
    fail "EIO: a failure is remembered" "$(grep -c broken.jpg "$LOG") log lines; computes $c0 -> $c1 (wanted one attempt)"
sleep 1.1; $MK 30 20 "$W/fixed.jpg"; cp "$W/fixed.jpg" "$SRC/broken.jpg"
expect_status "a fixed source is retried" 0 cat "$MNT/styled/udnie/broken.jpg"
expect_status "EROFS: write" 2 sh -c "echo x >'$MNT/styled/udnie/a.jpg'"; expect_err "EROFS: write message" "Read-only file system"
expect_status "EROFS: create" 2 sh -c "echo x >'$MNT/styled/udnie/new.jpg'"; expect_err "EROFS: create message" "Read-only file system"
expect_status "EROFS: rm" 1 rm -f "$MNT/styled/udnie/a.jpg"; expect_err "EROFS: rm message" "Read-only file system"
expect_status "EROFS: mkdir" 1 mkdir "$MNT/styled/udnie/x"; expect_err "EROFS: mkdir message" "Read-only file system"
expect_status "EROFS: rename" 1 mv "$MNT/styled/udnie/a.jpg" "$MNT/styled/udnie/z.jpg"; expect_err "EROFS: rename message" "Read-only file system"
expect_status "EROFS: chmod" 1 chmod 600 "$MNT/styled/udnie/a.jpg"; expect_err "EROFS: chmod message" "Read-only file system"
expect_status "EROFS: touch" 1 touch "$MNT/styled/udnie/a.jpg"; expect_err "EROFS: touch message" "Read-only file system"
expect_status "EROFS: truncate" 1 truncate -s 0 "$MNT/styled/udnie/a.jpg"; expect_err "EROFS: truncate message" "Read-only file system"
expect_status "EROFS: symlink" 1 ln -s a.jpg "$MNT/styled/udnie/l.jpg"; expect_err "EROFS: symlink message" "Read-only file system"
awk -v m="$MNT" '$2 == m { split($4, o, ","); for (i in o) if (o[i] == "ro") f = 1 } END { exit !f }' /proc/mounts &&
    pass "the mount is read-only (ro in /proc/mounts)" || fail "the mount is read-only" "$(grep " $MNT " /proc/mounts)"

# --- changed sources -----------------------------------------------------------------------
cat "$MNT/styled/udnie/a.jpg" >"$W/before.jpg"
sleep 1.1; $MK 64 48 "$SRC/a.jpg" --seed 99
cat "$MNT/styled/udnie/a.jpg" >"$W/after.jpg"
./stylefs stylize --styles "$STYLES" --no-cache udnie "$SRC/a.jpg" "$W/ref2.jpg" 2>/dev/null
! cmp -s "$W/before.jpg" "$W/after.jpg" && cmp -s "$W/after.jpg" "$W/ref2.jpg" && pass "a changed source is picked up on the next open" ||
    fail "a changed source is picked up on the next open" "stale bytes"
rm "$SRC/sub/many8.png"
expect_status "ENOENT: a source that vanished" 1 cat "$MNT/styled/udnie/sub/many8.png"

# --- unmount --------------------------------------------------------------------------------
unmount_it && pass "unmount while idle: the daemon exits" || fail "unmount while idle: the daemon exits" "still running"
if ! mount_it -o max_side=0; then
    fail "SIGTERM during a stylization" "the mount did not start: $(tail -3 "$LOG")"
else
    $MK 3000 2000 "$SRC/big.png" --seed 7
    cb=$(counter computes)
    cat "$MNT/styled/wave/big.png" >/dev/null 2>&1 &
    reader=$!
    # in flight: the computation has started (computes moved) and the reader still waits
    started=0
    for i in $(seq 200); do [ "$(counter computes)" -gt "$cb" ] && { started=1; break; }; sleep 0.05; done
    sleep 0.3
    inflight=0; [ $started = 1 ] && kill -0 $reader 2>/dev/null && inflight=1
    t0=$(date +%s.%N)
    kill -TERM $PID
    ok=0; for i in $(seq 100); do kill -0 $PID 2>/dev/null || { ok=1; break; }; sleep 0.1; done
    t1=$(date +%s.%N)
    wait $reader 2>/dev/null
    fusermount3 -u "$MNT" 2>/dev/null
    if [ $ok = 1 ] && [ $inflight = 1 ]; then
        pass "SIGTERM during a stylization (in flight: computing, reader waiting): exits in $(echo "$t1 - $t0" | bc 2>/dev/null || echo '<10')s"
    elif [ $inflight = 0 ]; then
        fail "SIGTERM during a stylization" "no stylization was in flight when the signal came (started=$started)"
    else
        fail "SIGTERM during a stylization: exits promptly" "still running after 10 s"; kill -9 $PID
    fi
fi
./stylefs stats --cache "$CACHE" --verify >"$W/verify" 2>&1 && pass "the cache checks clean after SIGTERM ($(tail -1 "$W/verify"))" ||
    fail "the cache checks clean after SIGTERM" "$(cat "$W/verify")"
mount_it
cat "$MNT/styled/udnie/sub/many1.png" >"$W/again.png"
./stylefs stylize --styles "$STYLES" --no-cache udnie "$SRC/sub/many1.png" "$W/ref3.png" 2>/dev/null
cmp -s "$W/again.png" "$W/ref3.png" && pass "after remount, entries read back byte-identical" || fail "after remount, entries read back byte-identical" "differs"
unmount_it

# --- relative paths (the mount leaves its working folder for /): cache= lands where given ------
mkdir -p "$W/rel/m"
top=$PWD
case $STYLES in /*) abs_styles=$STYLES ;; *) abs_styles=$top/$STYLES ;; esac
(cd "$W/rel" && exec "$top/stylefs" -f -o styles="$abs_styles",cache=relcache "$SRC" m 2>>"$LOG") &
rpid=$!
for i in $(seq 50); do [ -d "$W/rel/m/styled" ] && break; sleep 0.1; done
cat "$W/rel/m/styled/udnie/a.jpg" >/dev/null 2>&1
fusermount3 -u "$W/rel/m"; wait $rpid
[ -f "$W/rel/relcache/data.mdb" ] && pass "cache=relcache: the cache is made in the folder the mount was started from" ||
    fail "cache= relative" "no $W/rel/relcache/data.mdb; $(tail -1 "$LOG")"

# --- say what is served: a source downscaled by max_side --------------------------------------
: >"$LOG"
mount_it -o max_side=32
cat "$MNT/styled/udnie/a.jpg" "$MNT/styled/udnie/b.png" "$MNT/styled/udnie/sub/many1.png" >/dev/null
[ "$(counter resized)" = 2 ] && [ "$(counter last_resized)" = "64x48 32x24" ] &&
    [ "$(grep -c 'a 64x48 photo is stylized at 32x24 (max_side=32' "$LOG")" = 1 ] &&
    pass "max_side: .stats counts the 2 sources downscaled (the 32x32 one is not) and names the last one's sizes; one notice says so" ||
    fail "max_side: said in .stats and the log" "$(grep resized "$MNT/.stats" | tr '\n' ' '); $(tail -2 "$LOG")"
unmount_it
finish
