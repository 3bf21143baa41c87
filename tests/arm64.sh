#!/bin/sh
# arm64.sh: the aarch64 build's tests under qemu-user (make test-arm64).
#
#   usage: sh tests/arm64.sh BUILD_ARM64_DIR
# On a NEON-only CPU model (neoverse-n1) and on one with SVE (max): the
# kernels against the portable ones, the unit tests, the ONNX Runtime
# oracle at 64x64 and 37x29 (emulation is slow) at every level the CPU
# model runs, the painting networks against LiteRT's goldens at every
# level (the int8 predictor bit for bit, the transformer at 384x384), and
# no reference implementation in the plan.  Runs the
# binaries with `qemu-aarch64 -cpu MODEL` and no -L: the cross ld.so with
# the multiarch libraries (with -L, OpenMP spun forever).  Prints PASS /
# FAIL lines and "N passed, N failed"; exits 1 on any failure.
A=${1:-build-arm64}
SHARED=${SHARED:-../shared}
S="--styles $SHARED/models"
G=tests/golden
W=$(mktemp -d "${TMPDIR:-/tmp}/stylefs-arm64.XXXXXX")
LOG=$W/results
: >"$LOG"
export OMP_NUM_THREADS=2
start=$(date +%s)

say() { echo "$@" | tee -a "$LOG"; }
# prog MODEL NAME CMD...: a test program that prints its own PASS/FAIL lines
prog() {
    model=$1 name=$2
    shift 2
    { qemu-aarch64 -cpu "$model" "$@" 2>>"$W/stderr"; echo $? >"$W/rc"; } | sed "s/^\(PASS\|FAIL\|SKIP\) /\1 [$model] /" |
        tee "$W/out"
    cat "$W/out" >>"$LOG"
    rc=$(cat "$W/rc")
    if [ "$rc" != 0 ] && ! grep -q '^FAIL' "$W/out"; then say "FAIL [$model] $name: exited with status $rc"; fi
}

if ! command -v qemu-aarch64 >/dev/null; then
    say "FAIL arm64: qemu-aarch64 not found (make arm64-deps)"
else
    for model in neoverse-n1 max; do
        prog $model kernels "$A/obj/tests/kernels"
        mkdir -p "$W/unit"
        prog $model unit "$A/obj/tests/unit" "$SHARED/models" "$W/unit"
        levels=$(qemu-aarch64 -cpu $model "$A/stylefs" --version | sed -n 's/.*kernels this CPU runs: \([a-z0-9 ]*\)).*/\1/p')
        case " $levels " in *" neon "*) say "PASS [$model] --version lists neon ($levels)" ;;
        *) say "FAIL [$model] --version lists neon: '$levels'" ;; esac
        for lv in $levels; do
            for s in udnie wave scream; do
                for sz in 64x64 37x29; do
                    name="[$model] oracle: $s at $sz matches ONNX Runtime at $lv"
                    if STYLEFS_CPU_ISA=$lv qemu-aarch64 -cpu $model "$A/stylefs" stylize $S --no-cache --max-side 0 \
                        $s $G/in_$sz.ppm "$W/o.png" 2>"$W/err" &&
                        r=$(qemu-aarch64 -cpu $model "$A/obj/tests/imgcmp" $G/${s}_$sz.ppm "$W/o.png" --within1 0.999 --psnr 45); then
                        say "PASS $name ($r)"
                    else
                        say "FAIL $name: $r $(head -c 300 "$W/err")"
                    fi
                done
            done
        done
        # the painting networks (tests/t_arbitrary.sh's inputs and goldens)
        AR=$SHARED/arbitrary
        qemu-aarch64 -cpu $model "$A/obj/tests/mkimg" 256 256 "$W/style1.ppm" --seed 201
        qemu-aarch64 -cpu $model "$A/obj/tests/mkimg" 384 384 "$W/content.ppm" --seed 210
        for lv in $levels; do
            if STYLEFS_CPU_ISA=$lv qemu-aarch64 -cpu $model "$A/obj/tests/tflcheck" predict "$AR/predict_int8.tflite" \
                "$W/style1.ppm" "$W/b1.f32" >"$W/p.out" 2>&1 && cmp -s "$W/b1.f32" $G/arb_bottleneck_s1.f32; then
                say "PASS [$model] painting predictor (int8) at $lv: LiteRT's 100 floats bit for bit"
            else
                say "FAIL [$model] painting predictor (int8) at $lv: LiteRT's 100 floats bit for bit: $(head -c 300 "$W/p.out")"
            fi
            if STYLEFS_CPU_ISA=$lv qemu-aarch64 -cpu $model "$A/obj/tests/tflcheck" transfer "$AR/transfer_fp16.tflite" \
                "$W/content.ppm" $G/arb_bottleneck_s1.f32 "$W/t.ppm" >"$W/t.out" 2>&1 &&
                r=$(qemu-aarch64 -cpu $model "$A/obj/tests/imgcmp" "$W/t.ppm" $G/arb_fp16_384.png --within1 0.999 --psnr 45); then
                say "PASS [$model] painting transformer at $lv: 384x384 against LiteRT ($r)"
            else
                say "FAIL [$model] painting transformer at $lv: 384x384 against LiteRT: $r $(head -c 300 "$W/t.out")"
            fi
        done
        STYLEFS_CPU_ISA=neon qemu-aarch64 -cpu $model "$A/stylefs" stylize $S --no-cache -v udnie $G/in_37x29.ppm \
            "$W/o.png" 2>"$W/err"
        grep 'cpu plan: layer' "$W/err" >"$W/plan"
        n=$(wc -l <"$W/plan")
        bad=$(grep -E 'ref|generic' "$W/plan" | head -3)
        if [ "$n" = 16 ] && [ -z "$bad" ]; then
            say "PASS [$model] no layer runs a reference implementation ($(sed -n 's/.*layer  3: //p' "$W/plan"))"
        else
            say "FAIL [$model] no layer runs a reference implementation: $n plan lines; $bad $(head -c 400 "$W/err")"
        fi
        # full size in bands (cpu/bands.c), here on our own 3x3 kernels
        if STYLEFS_CPU_BANDS=2 qemu-aarch64 -cpu $model "$A/stylefs" stylize $S --no-cache --max-side 0 -v udnie \
            $G/in_64x64.ppm "$W/o.png" 2>"$W/err" && grep -q 'in bands of 8 rows' "$W/err" &&
            r=$(qemu-aarch64 -cpu $model "$A/obj/tests/imgcmp" $G/udnie_64x64.ppm "$W/o.png" --within1 0.999 --psnr 45); then
            say "PASS [$model] in bands of 8 rows, the oracle holds ($(sed -n 's/.*layer  1: //p' "$W/err" | head -1); $r)"
        else
            say "FAIL [$model] in bands of 8 rows, the oracle holds: $r $(tail -c 400 "$W/err")"
        fi
    done
fi

p=$(grep -c '^PASS' "$LOG")
f=$(grep -c '^FAIL' "$LOG")
s=$(grep -c '^SKIP' "$LOG")
[ "$f" -gt 0 ] && { echo "--- stderr (last 30 lines) ---"; tail -n 30 "$W/stderr"; }
echo "arm64 suite wall time: $(($(date +%s) - start)) s (under qemu)"
echo "$p passed, $f failed, $s skipped"
rm -rf "$W"
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
