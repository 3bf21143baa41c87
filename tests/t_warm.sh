#!/bin/sh
# t_warm.sh: `stylefs warm`: computes every image x style once, resumes,
# names failures, stops cleanly on SIGINT, shows a bar on a terminal and
# lines otherwise, and what it stores is what a mount then serves as hits
# (exact sizes before reading, bytes equal to `stylefs stylize`).
W=$1
. tests/lib.sh
SRC=$W/src C=$W/cache
mkdir -p "$SRC/sub dir"
for i in 1 2 3; do $MK 64 48 "$SRC/p$i.jpg" --seed $i; done
$MK 40 30 "$SRC/sub dir/q.png" --seed 9 --alpha
$MK 30 20 "$SRC/r.ppm" --seed 8
echo "not an image" >"$SRC/broken.jpg"
echo "notes" >"$SRC/notes.txt"
WS="--styles $STYLES --style udnie,wave --cache $C"

$SF warm $WS "$SRC" >"$W/out" 2>"$W/err"
rc=$?
if [ $rc -eq 1 ] && grep -q '^10 computed, 0 already cached, 2 failed (6 files x 2 styles' "$W/out"; then
    pass "warm: computes every image in every style, counts failures ($(head -1 "$W/out" | cut -c1-60))"
else
    fail "warm: computes every image in every style" "rc=$rc $(cat "$W/out" "$W/err")"
fi
grep -q '^failed: broken.jpg (udnie): not an image' "$W/out" && grep -q '^failed: broken.jpg (wave)' "$W/out" &&
    pass "warm: names the failed files" || fail "warm: names the failed files" "$(cat "$W/out")"
grep -q 'stylefs: warm: 12/12 done, .* images/s, ETA' "$W/err" &&
    pass "warm: plain progress lines when not on a terminal" || fail "warm: plain progress lines" "$(cat "$W/err")"

$SF warm $WS "$SRC" >"$W/out" 2>"$W/err"
grep -q '^0 computed, 10 already cached, 2 failed' "$W/out" &&
    pass "warm: a second run finds everything cached" || fail "warm: a second run finds everything cached" "$(cat "$W/out")"

rm "$SRC/broken.jpg"
if command -v script >/dev/null; then
    script -qec "$SF warm $WS '$SRC'" /dev/null >"$W/tty" 2>&1
    grep -q '\[#*\] 10/10  .* images/s  ETA' "$W/tty" && pass "warm: a progress bar on a terminal" ||
        fail "warm: a progress bar on a terminal" "$(head -c 300 "$W/tty")"
else
    skip "warm: a progress bar on a terminal" "script(1) not installed"
fi

expect_status "warm: an unknown style is a usage error" 2 $SF warm --styles "$STYLES" --style nosuch --cache "$C" "$SRC"
expect_err "warm: ... naming it" "unknown style 'nosuch'"
expect_status "warm: --jobs 0 is a usage error" 2 $SF warm --styles "$STYLES" --jobs 0 "$SRC"
expect_status "warm: a missing SOURCE fails" 1 $SF warm --styles "$STYLES" --cache "$C" "$W/nosuch"

# a mount over the same cache serves warmed files as hits
if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; then
    mkdir -p "$W/mnt"
    $SF -f -o styles="$STYLES",cache="$C" "$SRC" "$W/mnt" 2>"$W/daemon.log" &
    PID=$!
    for i in $(seq 50); do [ -d "$W/mnt/styled" ] && break; sleep 0.1; done
    sz=$(stat -c %s "$W/mnt/styled/wave/p2.jpg")
    cat "$W/mnt/styled/wave/p2.jpg" >"$W/p2.jpg"
    cat "$W/mnt/styled/udnie/sub dir/q.png" "$W/mnt/styled/udnie/r.ppm.png" >/dev/null
    $SF stylize --styles "$STYLES" --no-cache wave "$SRC/p2.jpg" "$W/want.jpg" 2>/dev/null
    if grep -q '^computes 0' "$W/mnt/.stats" && grep -q '^hits 3' "$W/mnt/.stats"; then
        pass "warm: a mount over the same cache serves warmed files as hits (no computation)"
    else
        fail "warm: a mount serves warmed files as hits" "$(tr '\n' ' ' <"$W/mnt/.stats")"
    fi
    [ "$sz" = "$(stat -c %s "$W/p2.jpg")" ] && cmp -s "$W/p2.jpg" "$W/want.jpg" &&
        pass "warm: exact size before reading, bytes equal to stylize" ||
        fail "warm: exact size before reading, bytes equal to stylize" "stat $sz, read $(stat -c %s "$W/p2.jpg")"
    fusermount3 -u "$W/mnt"
    wait $PID
else
    skip "warm: a mount over the same cache serves warmed files as hits" "/dev/fuse unusable here"
fi

# SIGINT: stops, keeps what is done, exits 130; a rerun resumes
mkdir -p "$W/big"
for i in 1 2 3 4 5 6; do $MK 800 600 "$W/big/b$i.png" --seed $((20 + i)); done
$SF warm -v --styles "$STYLES" --style udnie --cache "$W/c2" --max-side 0 --jobs 1 "$W/big" >"$W/out" 2>"$W/err" &
WP=$!
for i in $(seq 300); do grep -q 'computed$' "$W/err" 2>/dev/null && break; sleep 0.05; done
kill -INT $WP
wait $WP
rc=$?
if [ $rc -eq 130 ] && grep -q '^interrupted: [1-5] computed' "$W/out"; then
    pass "warm: SIGINT stops cleanly with exit 130 ($(head -1 "$W/out" | cut -c1-50))"
else
    fail "warm: SIGINT stops cleanly with exit 130" "rc=$rc $(cat "$W/out")"
fi
n=$(sed -n 's/^interrupted: \([0-9]*\) computed.*/\1/p' "$W/out")
$SF warm --styles "$STYLES" --style udnie --cache "$W/c2" --max-side 0 "$W/big" >"$W/out" 2>"$W/err"
if grep -q "^$((6 - ${n:-0})) computed, ${n:-0} already cached, 0 failed" "$W/out"; then
    pass "warm: running again resumes where it stopped"
else
    fail "warm: running again resumes where it stopped" "after $n: $(cat "$W/out")"
fi
# every entry read back and its checksum checked, and at least one there
$SF stats --cache "$W/c2" --verify >"$W/verify" 2>&1 && grep -qE 'verified: *[1-9][0-9]* entries, 0 damaged' "$W/verify" &&
    pass "warm: the cache checks clean after SIGINT ($(tail -1 "$W/verify" | tr -s ' '))" ||
    fail "warm: the cache checks clean after SIGINT" "$(cat "$W/verify")"
# out of memory while reading --style (strdup fails for one name): a clean
# error, no crash (it once left the list NULL with a count above 0)
ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 LD_PRELOAD=$PWD/build/tests/fault_inject.so \
    STYLEFS_FAULT=strdup:wave $SF warm --styles "$STYLES" --style udnie,wave --cache "$W/c-oom" "$W/big" \
    >"$W/out" 2>"$W/err"
rc=$?
[ $rc = 1 ] && grep -q "warm: --style udnie,wave: Cannot allocate memory" "$W/err" &&
    pass "warm: out of memory reading --style is a clean error (exit 1)" ||
    fail "warm: out of memory reading --style is a clean error" "exit $rc: $(head -c 300 "$W/err")"
# every style, one of them damaged: skipped with a message naming the
# file, the others warmed (the same loading rule as the mount and styles)
mkdir -p "$W/st" "$W/one"
cp -r "$STYLES/udnie" "$STYLES/wave" "$W/st/"
head -c 100 "$STYLES/wave/Variable_3" >"$W/st/wave/Variable_3"
$MK 32 24 "$W/one/a.png" --seed 4
$SF warm --styles "$W/st" --cache "$W/c-damaged" "$W/one" >"$W/out" 2>"$W/err"
rc=$?
[ $rc = 0 ] && grep -q 'skipping damaged style wave' "$W/err" && grep -q 'wave/Variable_3' "$W/err" &&
    grep -q '^1 computed, 0 already cached, 0 failed (1 file x 1 style,' "$W/out" &&
    pass "warm: a damaged style is skipped, naming its file; the others are warmed" ||
    fail "warm: a damaged style is skipped" "exit $rc: $(head -c 300 "$W/err") $(head -c 200 "$W/out")"
finish
