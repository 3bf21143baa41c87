#!/bin/sh
# t_arbitrary.sh: Magenta's arbitrary-style networks (../shared/arbitrary)
# through our TFLite reader and runner (build/tests/tflcheck), against
# LiteRT's outputs in tests/golden/arb_* (tests/make_golden_arb.sh, on
# synthetic images): the reader on the three files and on thousands of
# damaged copies, the int8 predictor bit for bit on three style images,
# the fp16 transformer at 384x384 within one 8-bit step, and other sizes.
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

# the transformer at 384x384 against LiteRT's fp16 output
$MK 384 384 "$W/content.ppm" --seed 210
if $T transfer "$A/transfer_fp16.tflite" "$W/content.ppm" "$W/b1.f32" "$W/out384.ppm" >"$W/t.out" 2>&1; then
    r=$($CMP "$W/out384.ppm" "$G/arb_fp16_384.png" --within1 0.999 --psnr 45)
    [ $? = 0 ] && pass "transformer (fp16 weights, float32): 384x384 against LiteRT: $r ($(cat "$W/t.out"))" ||
        fail "transformer at 384x384 against LiteRT" "$r"
else
    fail "transformer at 384x384 runs" "$(cat "$W/t.out")"
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
finish
