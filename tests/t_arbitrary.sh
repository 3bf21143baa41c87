#!/bin/sh
# t_arbitrary.sh: Magenta's arbitrary-style networks (../shared/arbitrary)
# through our TFLite reader and runner (build/tests/tflcheck), against
# LiteRT's outputs in tests/golden/arb_* (tests/golden/make_golden_arb.sh, on
# synthetic images): the reader on the three files and on thousands of
# damaged copies, the int8 predictor bit for bit on three style images,
# the fp16 transformer at 384x384 within one 8-bit step, and other sizes;
# then paintings as styles: the styles folder (kinds, clashes, broken
# files), stylize (the whole chain against LiteRT's, the cached style
# vector, --style-image, strengths, bad names) and the mount (listing,
# bytes, NAME@P directories).
W=$1
. tests/lib.sh
A=$SHARED/arbitrary G=tests/golden T=build/tests/tflcheck

if [ ! -f "$A/predict_int8.tflite" ]; then
    fail "arbitrary networks" "$A/predict_int8.tflite not found"
    finish
fi
$T parse "$A" || true

# the predictor: LiteRT's 100 floats, bit for bit
for n in 1 2 3; do
    $MK 256 256 "$W/style$n.ppm" --seed $((200 + n))
    if $T predict "$A/predict_int8.tflite" "$W/style$n.ppm" "$W/b$n.f32" >"$W/p$n.out" 2>&1 &&
       cmp -s "$W/b$n.f32" "$G/arb_bottleneck_s$n.f32"; then
        pass "predictor (int8): style $n's 100 floats are LiteRT's, bit for bit ($(cat "$W/p$n.out"))"
    else
        fail "predictor (int8): style $n's 100 floats are LiteRT's" "$(cat "$W/p$n.out"; cmp "$W/b$n.f32" "$G/arb_bottleneck_s$n.f32")"
    fi
done

# the transformer at 384x384 against LiteRT's fp16 output, at every
# instruction-set level this CPU runs (STYLEFS_CPU_ISA); the best level's
# output, out384.ppm, is used below
LEVELS=$(./stylefs --version | sed -n 's/.*kernels this CPU runs: \([a-z0-9 ]*\)).*/\1/p')
$MK 384 384 "$W/content.ppm" --seed 210
for lv in ${LEVELS#"${LEVELS%% *}"}; do     # all but the best
    if STYLEFS_CPU_ISA=$lv $T transfer "$A/transfer_fp16.tflite" "$W/content.ppm" "$W/b1.f32" "$W/out384_$lv.ppm" \
        >"$W/t.out" 2>&1; then
        r=$($CMP "$W/out384_$lv.ppm" "$G/arb_fp16_384.png" --within1 0.999 --psnr 45)
        [ $? = 0 ] && pass "transformer at $lv: 384x384 against LiteRT: $r ($(cat "$W/t.out"))" ||
            fail "transformer at $lv: 384x384 against LiteRT" "$r"
    else
        fail "transformer at $lv: 384x384 runs" "$(cat "$W/t.out")"
    fi
done
if $T transfer "$A/transfer_fp16.tflite" "$W/content.ppm" "$W/b1.f32" "$W/out384.ppm" >"$W/t.out" 2>&1; then
    r=$($CMP "$W/out384.ppm" "$G/arb_fp16_384.png" --within1 0.999 --psnr 45)
    [ $? = 0 ] && pass "transformer (fp16 weights, float32) at ${LEVELS%% *}: 384x384 against LiteRT: $r ($(cat "$W/t.out"))" ||
        fail "transformer at 384x384 against LiteRT" "$r"
else
    fail "transformer at 384x384 runs" "$(cat "$W/t.out")"
fi

# tflnet's portable loops (TFLCHECK_PORTABLE: no vector kernel at all),
# the fallback and the oracle of the vector kernels, on the same goldens
if TFLCHECK_PORTABLE=1 $T predict "$A/predict_int8.tflite" "$W/style1.ppm" "$W/bp1.f32" >"$W/pp.out" 2>&1 &&
   grep -q "portable" "$W/pp.out" && cmp -s "$W/bp1.f32" "$G/arb_bottleneck_s1.f32"; then
    pass "predictor, portable loops only: LiteRT's 100 floats, bit for bit ($(cat "$W/pp.out"))"
else
    fail "predictor, portable loops only: LiteRT's 100 floats" "$(cat "$W/pp.out"; cmp "$W/bp1.f32" "$G/arb_bottleneck_s1.f32")"
fi
if TFLCHECK_PORTABLE=1 $T transfer "$A/transfer_fp16.tflite" "$W/content.ppm" "$W/b1.f32" "$W/out384_portable.ppm" \
    >"$W/tp.out" 2>&1 && grep -q "portable" "$W/tp.out"; then
    r=$($CMP "$W/out384_portable.ppm" "$G/arb_fp16_384.png" --within1 0.999 --psnr 45) &&
    r2=$($CMP "$W/out384_portable.ppm" "$W/out384.ppm" --within1 0.9999 --psnr 60) &&
        pass "transformer, portable loops only: 384x384 against LiteRT: $r; against the vector kernels: $r2" ||
        fail "transformer, portable loops only, against LiteRT and the vector kernels" "$r; $r2"
else
    fail "transformer, portable loops only, runs" "$(cat "$W/tp.out")"
fi

# the choice made: the int8 predictor reproduced, against the same model
# computed in float32 (what the integer arithmetic changes in the image)
if $T predict-float "$A/predict_int8.tflite" "$W/style1.ppm" "$W/bf1.f32" >"$W/pf.out" 2>&1 &&
   $T transfer "$A/transfer_fp16.tflite" "$W/content.ppm" "$W/bf1.f32" "$W/outf.ppm" >/dev/null 2>&1; then
    d=$(python3 -c "
import array, sys
a = array.array('f'); a.frombytes(open(sys.argv[1], 'rb').read())
b = array.array('f'); b.frombytes(open(sys.argv[2], 'rb').read())
print('%.4f' % max(abs(x - y) for x, y in zip(a, b)))" "$W/bf1.f32" "$G/arb_bottleneck_s1.f32")
    r=$($CMP "$W/outf.ppm" "$G/arb_fp16_384.png")
    p=$(echo "$r" | sed 's/.*psnr=\([0-9.]*\).*/\1/')
    awk -v p="$p" -v d="$d" 'BEGIN { exit !(p > 30 && p < 60 && d > 0 && d < 0.5) }' &&
        pass "predictor computed in float instead of int8: style floats off by up to $d, the image against LiteRT's $r" ||
        fail "predictor in float: a measurable, small difference" "max diff $d; $r"
else
    fail "predictor in float runs" "$(cat "$W/pf.out")"
fi

# other sizes: the output is 4 * ceil(ceil(n / 2) / 2) per side (arbitrary.md 7)
for sz in 250x330 5x5 1000x40 7x64; do
    w=${sz%x*} h=${sz#*x}
    ow=$(( ( ( (w + 1) / 2 + 1) / 2) * 4 )) oh=$(( ( ( (h + 1) / 2 + 1) / 2) * 4 ))
    $MK "$w" "$h" "$W/c$sz.ppm" --seed 211
    if $T transfer "$A/transfer_fp16.tflite" "$W/c$sz.ppm" "$W/b2.f32" "$W/o$sz.ppm" >"$W/s.out" 2>&1 &&
       [ "$($CMP --info "$W/o$sz.ppm" | cut -d' ' -f1)" = "${ow}x${oh}" ]; then
        pass "transformer at ${w}x${h}: runs, output ${ow}x${oh}"
    else
        fail "transformer at ${w}x${h}" "$(cat "$W/s.out"; $CMP --info "$W/o$sz.ppm" 2>&1)"
    fi
done
$MK 4 9 "$W/c4x9.ppm" --seed 212
if $T transfer "$A/transfer_fp16.tflite" "$W/c4x9.ppm" "$W/b2.f32" "$W/o4x9.ppm" >"$W/s.out" 2>&1; then
    fail "transformer at 4x9 is refused (reflect pad 4 needs 5 pixels)" "it ran"
else
    grep -q "too small" "$W/s.out" && pass "transformer at 4x9 is refused: $(cat "$W/s.out")" ||
        fail "transformer at 4x9 is refused with a reason" "$(cat "$W/s.out")"
fi

# --- paintings as styles: the styles folder, stylize, the mount ------------------------------------
ST=$W/styles
mkdir -p "$ST"
ln -s "$(cd "$STYLES/udnie" && pwd)" "$ST/udnie"
ln -s "$(cd "$A" && pwd)" "$ST/arbitrary"
cp "$W/style1.ppm" "$ST/klee.ppm"
$MK 200 150 "$ST/pond.jpg" --seed 220
echo "not an image" >"$ST/broken.png"
cp "$W/style2.ppm" "$ST/udnie.ppm"
$SF styles --styles "$ST" >"$W/styles.out" 2>"$W/styles.err"
[ "$(cut -f1 "$W/styles.out" | tr '\n' ' ')" = "klee pond udnie " ] && grep -q "^klee	painting $ST/klee.ppm" "$W/styles.out" &&
    grep -q "^udnie	network" "$W/styles.out" &&
    pass "styles: a painting in the styles folder is a style, and styles says which kind each is" ||
    fail "styles: paintings listed with their kind" "$(cat "$W/styles.out")"
grep -q "broken.png" "$W/styles.err" && pass "styles: a painting that does not decode is refused, naming the file" ||
    fail "styles: a broken painting is named" "$(cat "$W/styles.err")"
grep -q "udnie.ppm" "$W/styles.err" && grep -q "$ST/udnie/" "$W/styles.err" &&
    pass "styles: a name clash (udnie/ and udnie.ppm) is refused, naming both" ||
    fail "styles: a name clash names both files" "$(cat "$W/styles.err")"

# the whole chain (painting in, styled photo out) against LiteRT's whole chain
$SF stylize --styles "$ST" --cache "$W/cache" -v klee "$W/content.ppm" "$W/chain.png" 2>"$W/chain.err"
r=$($CMP "$W/chain.png" "$G/arb_fp16_384.png" --psnr 35 --within1 0.999)
[ $? = 0 ] && pass "stylize klee (a painting): the whole chain against LiteRT's: $r" ||
    fail "stylize klee: the whole chain against LiteRT's" "$r; $(tail -2 "$W/chain.err")"
grep -q "its vector from" "$W/chain.err" && pass "the painting's style vector is computed at its first use" ||
    fail "the painting's style vector is computed at its first use" "$(cat "$W/chain.err")"
$SF stylize --styles "$ST" --cache "$W/cache" -v klee "$W/c250x330.ppm" "$W/chain2.png" 2>"$W/chain2.err"
! grep -q "its vector from" "$W/chain2.err" && grep -q "computed" "$W/chain2.err" &&
    pass "... and read from the cache after that (another photo, another process)" ||
    fail "the style vector is cached" "$(cat "$W/chain2.err")"
[ "$($CMP --info "$W/chain2.png" | cut -d' ' -f1)" = 250x330 ] && pass "stylize with a painting keeps the photo's size (250x330)" ||
    fail "stylize with a painting keeps the photo's size" "$($CMP --info "$W/chain2.png")"
for sz in 1x1 3x2 2x9; do                 # under the network's 5 pixels: extended, then cropped back
    $MK "${sz%x*}" "${sz#*x}" "$W/tiny$sz.png" --seed 240
    if $SF stylize --styles "$ST" --no-cache klee "$W/tiny$sz.png" "$W/tinyo$sz.png" 2>"$W/tiny.err" &&
       [ "$($CMP --info "$W/tinyo$sz.png" | cut -d' ' -f1)" = "$sz" ]; then
        pass "stylize with a painting at $sz: runs, output $sz"
    else
        fail "stylize with a painting at $sz" "$(cat "$W/tiny.err"; $CMP --info "$W/tinyo$sz.png" 2>&1)"
    fi
done
$SF stylize --style-image "$ST/klee.ppm" --arbitrary "$A" --no-cache "$W/content.ppm" "$W/si.png" 2>/dev/null
cmp -s "$W/si.png" "$W/chain.png" && pass "stylize --style-image FILE: the same bytes as the style named after it" ||
    fail "stylize --style-image FILE equals the named style" "differs"
$SF stylize --styles "$ST" --no-cache klee@50 "$W/content.ppm" "$W/k50.png" 2>/dev/null
$SF stylize --style-image "$ST/klee.ppm" --strength 50 --arbitrary "$A" --no-cache "$W/content.ppm" "$W/si50.png" 2>/dev/null
# strength 0 against 100 on a photograph (a synthetic pattern is no photo for this network)
PHOTO=$(ls "$SHARED"/images/*.jpg 2>/dev/null | head -1)
[ -n "$PHOTO" ] || PHOTO=$W/content.ppm
$SF stylize --styles "$ST" --no-cache --max-side 0 klee@0 "$PHOTO" "$W/k0.png" 2>/dev/null
$SF stylize --styles "$ST" --no-cache --max-side 0 klee "$PHOTO" "$W/k100.png" 2>/dev/null
p50=$($CMP "$W/k50.png" "$W/chain.png" | sed 's/.*psnr=\([0-9.]*\).*/\1/')
p50s=$($CMP "$W/k50.png" "$W/content.ppm" | sed 's/.*psnr=\([0-9.]*\).*/\1/')
p0=$($CMP "$W/k0.png" "$PHOTO" | sed 's/.*psnr=\([0-9.]*\).*/\1/')
p100=$($CMP "$W/k100.png" "$PHOTO" | sed 's/.*psnr=\([0-9.]*\).*/\1/')
awk -v a="$p50" -v b="$p50s" 'BEGIN{exit !(a < 40 && b < 40)}' && cmp -s "$W/k50.png" "$W/si50.png" &&
    pass "klee@50 differs from klee (PSNR $p50 dB) and from the photo ($p50s dB); --strength 50 gives its bytes" ||
    fail "klee@50 differs from klee and from the photo" "psnr $p50 / $p50s"
awk -v a="$p0" -v b="$p100" 'BEGIN{exit !(a > b)}' &&
    pass "klee@0 is nearer the photo than klee@100 ($(basename "$PHOTO"): PSNR $p0 against $p100 dB)" ||
    fail "klee@0 is nearer the photo" "psnr $p0 against $p100"
# max_pixels bounds the painting too (decoded within it when its vector is made)
$MK 300 300 "$W/bigpaint.png" --seed 260
$SF stylize --style-image "$W/bigpaint.png" --arbitrary "$A" --no-cache --max-pixels 50000 "$W/c5x5.ppm" "$W/bp.png" \
    >/dev/null 2>"$W/err"
rc=$?
[ $rc = 1 ] && grep -q "the painting .*bigpaint.png: .*pixels" "$W/err" &&
    pass "a painting over --max-pixels is refused when its vector is made: $(head -c 160 "$W/err")" ||
    fail "a painting over --max-pixels is refused" "exit $rc; $(cat "$W/err")"
for bad in klee@101 klee@050 klee@5x klee@ klee@-1 udnie@50x udnie+colours klee+colors@50; do
    expect_status "stylize $bad: not a style (exit 1)" 1 $SF stylize --styles "$ST" --no-cache "$bad" "$W/content.ppm" "$W/bad.png"
done

# warm: the vector through the one produce, once for two photos and two jobs
mkdir -p "$W/wsrc"
$MK 96 64 "$W/wsrc/a.jpg" --seed 250
$MK 64 96 "$W/wsrc/b.png" --seed 251
$SF warm --styles "$ST" --style pond --cache "$W/wcache" --jobs 2 -v "$W/wsrc" >"$W/warm.out" 2>"$W/warm.err"
n=$(grep -c "style pond: its vector from" "$W/warm.err")
[ "$n" = 1 ] && grep -q "^2 computed" "$W/warm.out" &&
    pass "warm: two photos in a new painting, two jobs: one prediction of its vector" ||
    fail "warm: one prediction of a painting's vector" "$n predictions; $(cat "$W/warm.out")"
$SF stylize --styles "$ST" --cache "$W/wcache" -v pond "$W/content.ppm" "$W/pondw.png" 2>"$W/pondw.err"
! grep -q "its vector from" "$W/pondw.err" && grep -q "computed" "$W/pondw.err" &&
    pass "stylize finds the vector that warm stored (the same key)" ||
    fail "stylize finds warm's vector" "$(cat "$W/pondw.err")"

if fuse_usable; then
    SRC=$W/src MNT=$W/mnt CACHE=$W/mcache LOG=$W/daemon.log STYLES=$ST
    mkdir -p "$SRC" "$MNT"
    cp "$W/content.ppm" "$SRC/photo.ppm"
    $MK 120 90 "$SRC/small.jpg" --seed 230
    $MK 80 60 "$SRC/late.jpg" --seed 231
    if mount_it -v -o gpu_idle=1; then
        [ "$(ls "$MNT/styled" | tr '\n' ' ')" = "klee pond udnie " ] &&
            pass "mount: styled/ lists the paintings with the networks, and no @ directories" ||
            fail "mount: styled/ lists the paintings" "$(ls "$MNT/styled")"
        # two readers of two photos in a painting nobody has used: one prediction
        cat "$MNT/styled/klee/small.jpg" >"$W/r1" & r1=$!
        cat "$MNT/styled/klee/photo.ppm.png" >"$W/r2" & r2=$!
        wait $r1 && wait $r2 && [ "$(counter vectors)" = 1 ] && [ "$(grep -c 'style klee: its vector from' "$LOG")" = 1 ] &&
            pass "mount: two readers of a new painting make one prediction of its vector" ||
            fail "mount: two readers, one prediction" "vectors $(counter vectors); $(grep -c 'its vector from' "$LOG") in the log"
        cmp -s "$MNT/styled/klee/photo.ppm.png" "$W/chain.png" && pass "mount: a painting's file equals stylefs stylize" ||
            fail "mount: a painting's file equals stylefs stylize" "differs"
        cmp -s "$MNT/styled/klee@50/photo.ppm.png" "$W/k50.png" &&
            pass "mount: klee@50/ is reachable by name and equals stylize klee@50" ||
            fail "mount: klee@50/ equals stylize klee@50" "differs"
        for bad in klee@101 klee@07 udnie@50x klee@x klee+colors@50; do
            [ ! -e "$MNT/styled/$bad" ] && pass "mount: $bad is no directory (ENOENT)" || fail "mount: $bad is ENOENT" "it exists"
        done
        [ "$(counter vectors)" = 1 ] && pass "mount: klee@50 blends the vector already made (still one prediction)" ||
            fail "mount: klee@50 uses klee's vector" "vectors $(counter vectors)"
        # idle: the transformer's plan is released after gpu_idle (1 s),
        # and the next read plans it again
        for i in $(seq 40); do
            grep -q "transformer's plan for 384x384 released after 1 s idle" "$LOG" && break
            sleep 0.1
        done
        n1=$(grep -c "transformer's plan for 384x384 released after 1 s idle" "$LOG")
        $SF stylize --styles "$ST" --no-cache pond "$W/content.ppm" "$W/pond.png" 2>/dev/null
        [ "$n1" = 1 ] && cmp -s "$MNT/styled/pond/photo.ppm.png" "$W/pond.png" &&
            pass "mount: the painting networks' plan is released after gpu_idle, and planned again at the next read" ||
            fail "mount: the painting plan released after gpu_idle" "released $n1 times; $(tail -2 "$LOG")"
        # live styles: the painting replaced under the mount is loaded again
        # (inotify); what was cached for its old bytes is never served for
        # the new ones (keys name the painting's bytes)
        v0=$(counter vectors)
        cp "$ST/klee.ppm" "$W/klee.keep"
        $SF stylize --style-image "$W/style2.ppm" --arbitrary "$A" --no-cache "$W/content.ppm" "$W/klee2.png" 2>/dev/null
        cp "$W/style2.ppm" "$ST/klee.ppm"
        wait_log "style klee: changed (painting $ST/klee.ppm)" &&
            cmp -s "$MNT/styled/klee/photo.ppm.png" "$W/klee2.png" && ! cmp -s "$W/klee2.png" "$W/chain.png" &&
            [ "$(counter vectors)" = $((v0 + 1)) ] &&
            pass "mount: a painting replaced while mounted is live: its photos are styled with the new bytes, not the cached old" ||
            fail "mount: a painting replaced while mounted" "vectors $v0 -> $(counter vectors); $(tail -2 "$LOG")"
        cp "$W/klee.keep" "$ST/klee.ppm"
        wait_log "style klee: changed" 2 &&
            cmp -s "$MNT/styled/klee/photo.ppm.png" "$W/chain.png" && timeout -k 2 60 cat "$MNT/styled/klee/late.jpg" >"$W/late" &&
            [ -s "$W/late" ] && pass "mount: the painting restored, served from the cache as before" ||
            fail "mount: the painting restored" "$(tail -2 "$LOG")"
        # the painting gone: its style goes; back, it comes back
        $MK 70 50 "$SRC/later.jpg" --seed 232
        mv "$ST/klee.ppm" "$W/klee.away"
        wait_log "style klee: removed" && [ ! -e "$MNT/styled/klee" ] && ! ls "$MNT/styled" | grep -q klee &&
            mv "$W/klee.away" "$ST/klee.ppm" && wait_log "style klee: added" &&
            cat "$MNT/styled/klee/later.jpg" >"$W/later" 2>/dev/null && [ -s "$W/later" ] &&
            pass "mount: a painting moved out of the styles folder goes from styled/, and comes back when moved in" ||
            fail "mount: a painting moved out and in" "$(tail -2 "$LOG")"
        [ -f "$ST/klee.ppm" ] || mv "$W/klee.away" "$ST/klee.ppm"
        # a painting being written is not loaded until it is closed
        { head -c 5000 "$W/style3.ppm"; sleep 1; tail -c +5001 "$W/style3.ppm"; } >"$ST/slow.ppm" &
        wp=$!
        sleep 0.5
        half=$(ls "$MNT/styled" | tr '\n' ' ')
        wait $wp
        wait_log "style slow: added (painting $ST/slow.ppm)" && [ -d "$MNT/styled/slow" ] &&
            ! grep -q "style slow: not added\|skipping damaged style slow" "$LOG" && ! echo "$half" | grep -q slow &&
            pass "mount: a painting is loaded when its writer closes it, never half-written" ||
            fail "mount: a half-written painting" "listing while written: $half; $(tail -3 "$LOG")"
        # a network's folder moved in appears, moved out goes
        cp -r "$SHARED/models/wave" "$W/wave.net"
        mv "$W/wave.net" "$ST/wave"
        wait_log "style wave: added (network $ST/wave)" && [ -d "$MNT/styled/wave@50" ] &&
            mv "$ST/wave" "$W/wave.net" && wait_log "style wave: removed" && [ ! -e "$MNT/styled/wave" ] &&
            pass "mount: a network folder moved into the styles folder appears, moved out goes" ||
            fail "mount: a network folder moved in and out" "$(tail -3 "$LOG")"
        unmount_it || fail "unmount" "the daemon did not exit"
    else
        fail "mount with paintings" "$(tail -3 "$LOG")"
    fi
else
    skip "mount with paintings" "FUSE unusable here"
fi
finish
