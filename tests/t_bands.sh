#!/bin/sh
# t_bands.sh: the CPU engine's banded pass (cpu/bands.c): full size in
# bounded memory.  Bands are forced small (STYLEFS_CPU_BANDS=Q: Q quarter
# rows, 4Q rows at full size) so that small images cross many seams: the
# oracle holds on banded images at every level, the bytes stay within one
# 8-bit step of the whole-image pass's and are the same at any number of
# threads, the memory stays bounded on a photo that bands by itself, and
# the scratch file's failures are clear and leave nothing behind.
W=$1
. tests/lib.sh
G=tests/golden
S="--styles $STYLES"
LEVELS=$($SF --version | sed -n 's/.*kernels this CPU runs: \([a-z0-9 ]*\)).*/\1/p')

# --- the oracle on banded images ----------------------------------------------
# oracle STYLE SIZE Q WHAT ENV...: STYLE on the golden input of SIZE in
# bands of 4Q rows, with ENV, within the oracle's bar of ONNX Runtime
oracle() {
    s=$1 sz=$2 q=$3 name="oracle: $1 at $2 in bands of $((4 * $3)) rows $4 matches ONNX Runtime"
    shift 4
    if env "$@" STYLEFS_CPU_BANDS=$q $SF stylize $S --no-cache --max-side 0 -v $s $G/in_$sz.ppm "$W/o.png" \
        2>"$W/err" && grep -q "in bands of $((4 * q)) rows" "$W/err" &&
        r=$($CMP $G/${s}_$sz.ppm "$W/o.png" --within1 0.999 --psnr 45); then
        pass "$name ($r)"
    else
        fail "$name" "$r $(tail -c 400 "$W/err")"
    fi
}
for lv in $LEVELS; do
    for s in udnie scream; do
        for sz in 64x64 37x29 128x128; do
            for q in 1 3; do oracle $s $sz $q "at $lv" STYLEFS_CPU_ISA=$lv; done
        done
    done
done
# and with layers 1-14 on our own 3x3 kernels (what aarch64 runs, where
# Debian's oneDNN has no vector kernels)
for s in udnie scream; do
    for sz in 64x64 37x29; do
        oracle $s $sz 1 "on our 3x3 kernels (STYLEFS_CPU_DNNL=0)" STYLEFS_CPU_DNNL=0
        grep -q "layer 13: stylefs conv3x3" "$W/err" || fail "bands: STYLEFS_CPU_DNNL=0 runs layer 13 on our 3x3 kernel" \
            "$(grep 'layer 13' "$W/err")"
    done
done

# --- against the whole-image pass ---------------------------------------------
# odd sizes (SAME padding differs at each end), a band taller than the
# image, and every seam: within one 8-bit step everywhere
for sz in "301 203" "97 61" "33 170" "5 3"; do
    set -- $sz
    $MK $1 $2 "$W/in.ppm" --seed 7
    for lv in $LEVELS; do
        STYLEFS_CPU_ISA=$lv STYLEFS_CPU_BANDS=0 $SF stylize $S --no-cache --max-side 0 la_muse "$W/in.ppm" \
            "$W/whole.png" 2>"$W/err" || fail "bands: whole $1x$2 at $lv" "$(cat "$W/err")"
        for q in 1 2 5 7; do
            name="bands: $1x$2 in bands of $((4 * q)) rows at $lv is within one step of the whole image"
            if STYLEFS_CPU_ISA=$lv STYLEFS_CPU_BANDS=$q $SF stylize $S --no-cache --max-side 0 la_muse "$W/in.ppm" \
                "$W/band.png" 2>"$W/err" && r=$($CMP "$W/whole.png" "$W/band.png" --within1 1); then
                pass "$name ($r)"
            else
                fail "$name" "$r $(tail -c 400 "$W/err")"
            fi
        done
    done
done

$MK 97 61 "$W/in.ppm" --seed 7
STYLEFS_CPU_DNNL=0 STYLEFS_CPU_BANDS=0 $SF stylize $S --no-cache --max-side 0 udnie "$W/in.ppm" "$W/whole.png" 2>"$W/err"
for q in 1 2 5; do
    name="bands: 97x61 in bands of $((4 * q)) rows on our 3x3 kernels is within one step of the whole image"
    if STYLEFS_CPU_DNNL=0 STYLEFS_CPU_BANDS=$q $SF stylize $S --no-cache --max-side 0 udnie "$W/in.ppm" "$W/band.png" \
        2>"$W/err" && r=$($CMP "$W/whole.png" "$W/band.png" --within1 1); then
        pass "$name ($r)"
    else
        fail "$name" "$r $(tail -c 400 "$W/err")"
    fi
done

# the same bytes at 1, 2 and 3 threads (the norms' sums are added row by
# row in order)
$MK 300 200 "$W/thr.ppm" --seed 11
ok=1 why=
for t in 1 2 3; do
    OMP_NUM_THREADS=$t STYLEFS_CPU_BANDS=2 $SF stylize $S --no-cache udnie "$W/thr.ppm" "$W/thr$t.png" 2>"$W/err" ||
        { ok=; why="$t threads: $(cat "$W/err")"; }
done
if [ -n "$ok" ] && cmp -s "$W/thr1.png" "$W/thr2.png" && cmp -s "$W/thr1.png" "$W/thr3.png"; then
    pass "bands: 1, 2 and 3 threads give the same bytes"
else
    fail "bands: 1, 2 and 3 threads give the same bytes" "${why:-$(cmp "$W/thr1.png" "$W/thr2.png"; cmp "$W/thr1.png" "$W/thr3.png")}"
fi

# --- memory -------------------------------------------------------------------
# 3200 x 2400 (7.7 MP) bands by itself; the whole-image pass needed about
# 200 bytes a pixel (1.5 GB here), the banded one stays under 700 MB
# (under ASan the shadow memory makes the figure meaningless)
$MK 3200 2400 "$W/big.ppm" --seed 3
mkdir -p "$W/tmp"
if TMPDIR=$W/tmp /usr/bin/time -f '%M' -o "$W/rss" $SF stylize $S --no-cache --max-side 0 -v udnie "$W/big.ppm" \
    "$W/big.jpg" 2>"$W/err"; then
    kb=$(tail -n 1 "$W/rss")
    if ! grep -q "in bands of" "$W/err"; then
        fail "bands: a 7.7 MP photo bands by itself" "$(grep 'cpu plan' "$W/err" | head -2)"
    elif ldd $SF 2>/dev/null | grep -q libasan; then
        skip "bands: a 7.7 MP photo in under 700 MB" "sanitized build (peak ${kb} kB)"
    elif [ "$kb" -lt 700000 ]; then
        pass "bands: a 7.7 MP photo in under 700 MB (peak RSS $((kb / 1024)) MB)"
    else
        fail "bands: a 7.7 MP photo in under 700 MB" "peak RSS $((kb / 1024)) MB"
    fi
    # the scratch file was unlinked from the start: nothing is left
    if [ -z "$(ls -A "$W/tmp")" ]; then pass "bands: nothing is left in TMPDIR"
    else fail "bands: nothing is left in TMPDIR" "$(ls -A "$W/tmp")"; fi
else
    fail "bands: a 7.7 MP photo bands by itself" "$(tail -c 400 "$W/err")"
fi

# mem_max admits it by the banded estimate (about 0.57 GB here; the
# whole-image one, 1.5 GB, was refused)
if fuse_usable && [ -f "$W/big.jpg" ]; then
    SRC=$W/msrc MNT=$W/mmnt CACHE=$W/mcache LOG=$W/mlog
    mkdir -p "$SRC" "$MNT"
    cp "$W/big.jpg" "$SRC/big.jpg"
    if mount_it -o mem_max=700M,max_side=0; then
        if cat "$MNT/styled/udnie/big.jpg" >"$W/mread.jpg" 2>"$W/err" && [ -s "$W/mread.jpg" ]; then
            pass "bands: mem_max=700M lets a 7.7 MP photo through (it bands)"
        else
            fail "bands: mem_max=700M lets a 7.7 MP photo through" "$(cat "$W/err"); $(tail -c 300 "$LOG")"
        fi
        unmount_it
    else
        fail "bands: mount with mem_max" "$(tail -c 300 "$LOG")"
    fi
fi

# --- the scratch file's failures ----------------------------------------------
TMPDIR=$W/no/such/dir STYLEFS_CPU_BANDS=2 $SF stylize $S --no-cache udnie "$W/thr.ppm" "$W/x.png" >"$W/out" 2>"$W/err"
rc=$?
if [ $rc != 0 ] && [ $rc -lt 128 ] && grep -q "no scratch file in $W/no/such/dir" "$W/err" && [ ! -e "$W/x.png" ]; then
    pass "bands: a TMPDIR that does not exist fails the image with its name, and no output"
else
    fail "bands: a TMPDIR that does not exist fails the image with its name" "exit $rc: $(tail -c 300 "$W/err")"
fi
mkdir -p "$W/small"
if mount -t tmpfs -o size=1m tmpfs "$W/small" 2>/dev/null; then
    TMPDIR=$W/small STYLEFS_CPU_BANDS=2 $SF stylize $S --no-cache udnie "$W/thr.ppm" "$W/x.png" >"$W/out" 2>"$W/err"
    rc=$?
    if [ $rc != 0 ] && [ $rc -lt 128 ] && grep -q "cannot reserve .* MB of scratch in $W/small" "$W/err" &&
        [ -z "$(ls -A "$W/small")" ]; then
        pass "bands: a full scratch disk fails the image at once, saying so"
    else
        fail "bands: a full scratch disk fails the image at once, saying so" "exit $rc: $(tail -c 300 "$W/err")"
    fi
    umount "$W/small"
else
    skip "bands: a full scratch disk fails the image at once" "cannot mount a tmpfs here"
fi

# --- through the mount --------------------------------------------------------
if fuse_usable; then
    SRC=$W/src MNT=$W/mnt CACHE=$W/cache LOG=$W/log
    mkdir -p "$SRC" "$MNT"
    $SF stylize $S --no-cache udnie "$W/thr.ppm" "$SRC/a.png" 2>/dev/null
    STYLEFS_CPU_BANDS=2 $SF stylize $S --no-cache udnie "$SRC/a.png" "$W/want.png" 2>"$W/err"
    export STYLEFS_CPU_BANDS=2
    if mount_it; then
        if cmp -s "$MNT/styled/udnie/a.png" "$W/want.png"; then
            pass "bands: a read through the mount gives stylize's bytes"
        else
            fail "bands: a read through the mount gives stylize's bytes" "$(tail -c 300 "$LOG")"
        fi
        unmount_it
    else
        fail "bands: mount" "$(tail -c 300 "$LOG")"
    fi
    unset STYLEFS_CPU_BANDS
else
    skip "bands: through the mount" "no FUSE here"
fi
finish
