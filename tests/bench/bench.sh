#!/bin/sh
# bench.sh: `make bench`: the CPU engine against ONNX Runtime, same run,
# same machine, same weights, 2 threads (OMP_NUM_THREADS, ORT --threads),
# at every vector instruction-set level this CPU runs (STYLEFS_CPU_ISA:
# an AVX-512 machine also runs its AVX2 engine).
#
# First the CPU, its levels and its own fp32 FMA peak per level, 1 and 2
# threads (build/tests/peak, measured again before each per-layer table,
# since these VMs' throughput changes from minute to minute: on a 2-core
# Zen 3 the 2-thread peak read 180-186 GFLOP/s in one period and 86-94 in
# another), ONNX Runtime's network alone at each size (median of 5 after
# a warm-up run; no load, no codecs, no first touch of memory), and
# PyTorch's at each level.  Then, per level, for 256x256, 1 MP and 4 MP:
#   net_s    stylefs network alone (build/tests/netbench, median of 3)
#   best_s   `stylefs stylize` as a process: load, decode, network, PNG
#   med_s    encode; best and median of 5 runs (wall clock)
#   rss_MB   that process's peak RSS (GNU time)
#   ort_s    ONNX Runtime's network alone
#   ratio    ort_s / best_s, and r_med = ort_s / med_s (higher is better)
#   pt_s     PyTorch's network alone at this level (256x256 and 1 MP)
#   pt_rat   pt_s / best_s
# the per-layer table at 1 MP (ms, GFLOP/s, share of that level's 2-thread
# peak, implementation), and 1 against 2 threads.  At the best level also
# the 1 MP row with a JPEG in and out, in float32 (STYLEFS_CPU_BF16=0),
# the cost per pixel from 1 to 24 MP, the contention row (256x256 beside a
# busy core), and full size (--max-side 0) at 12, 24 and 48 MP: time, peak
# RSS, MB/MP.
set -eu
B=build/bench
mkdir -p "$B"
. tests/golden/ort_setup.sh
ort_model udnie
export OMP_NUM_THREADS=2
ST="--styles $SHARED/models"

LEVELS=$(./stylefs --version | sed -n 's/.*kernels this CPU runs: \([a-z0-9 ]*\)).*/\1/p')
BEST=${LEVELS%% *}
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) threads; levels: $LEVELS"
./stylefs stylize $ST --no-cache -v udnie tests/golden/in_128x128.ppm "$B/o.png" 2>&1 >/dev/null |
    sed -n 's/^stylefs: engine: /engine: /p' 2>/dev/null || true
for lv in $LEVELS; do
    p1=$(build/tests/peak $lv 1 | sed 's/.*gflops=//')
    p2=$(build/tests/peak $lv 2 | sed 's/.*gflops=//')
    echo "fp32 peak at $lv: $p1 GFLOP/s with 1 thread, $p2 with 2$([ $lv = generic ] && echo ' (multiply and add, the base instruction set)')"
done

# ONNX Runtime once per size
for sz in 256 1024 2048; do
    build/tests/mkimg $sz $sz "$B/in$sz.ppm"
    ort=$(NODE_PATH="$ORT/node_modules" node "$SHARED/anchors/ort_anchor.js" "$ORT/udnie.onnx" \
          "$B/in$sz.ppm" "$B/ort$sz.ppm" --runs 5 --threads 2 | tail -n 1 |
          sed 's/.*"median_ms":\([0-9.]*\).*/\1/')
    eval "ort_$sz=$ort"
done
echo "ONNX Runtime 1.30, network alone, 2 threads: 256x256 $(awk -v o=$ort_256 'BEGIN{printf "%.3f", o/1000}') s," \
     "1 MP $(awk -v o=$ort_1024 'BEGIN{printf "%.3f", o/1000}') s, 4 MP $(awk -v o=$ort_2048 'BEGIN{printf "%.3f", o/1000}') s"

# PyTorch (Debian's python3-torch, `make deps`; its own oneDNN is the system
# libdnnl) on the same network and weights, per level: tests/bench/
# torch_bench.py --cpu, 2 threads, median of 5 after a warm-up, at 256x256
# and 1 MP, its PSNR against the ONNX Runtime output for the same input.
# Capped to AVX2 for the avx2 level (ATEN_CPU_CAPABILITY=avx2
# ONEDNN_MAX_CPU_ISA=AVX2).  glibc's malloc is told to keep freed memory
# (MALLOC_MMAP_MAX_=0 and a large trim threshold): PyTorch's tensors of
# 32 MB and more are otherwise mmap'ed and unmapped on every layer, and
# the page faults made the 1 MP pass 6x slower on this VM (9.4 s against
# 1.46 s, AMD EPYC Zen 5); the peer is timed at its best.
TORCH_PY=
for py in python3 /usr/bin/python3; do
    "$py" -c 'import torch, numpy' 2>/dev/null && { TORCH_PY=$py; break; }
done
for lv in $LEVELS; do
    [ "$lv" = generic ] && continue
    eval "pt_${lv}_256= pt_${lv}_1024="
    [ -n "$TORCH_PY" ] || continue
    cap=
    [ "$lv" = avx2 ] && [ "$BEST" != avx2 ] && cap="ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2"
    env $cap MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 "$TORCH_PY" tests/bench/torch_bench.py \
        "$SHARED/models/udnie" --cpu --threads 2 --runs 5 "$B/in256.ppm" "$B/ort256.ppm" \
        "$B/in1024.ppm" "$B/ort1024.ppm" >"$B/torch.$lv" 2>&1 ||
        { echo "PyTorch at $lv: failed: $(tail -n 1 "$B/torch.$lv")"; continue; }
    for sz in 256 1024; do
        eval "pt_${lv}_$sz=$(sed -n "s/^torch cpu ${sz}x$sz median_ms=\([0-9.]*\).*/\1/p" "$B/torch.$lv")"
    done
    awk -v cap="${cap:+ ($cap)}" '/^torch cpu: / { sub(/^torch cpu: /, ""); head = $0; next }
        /^torch cpu / { split($4, t, "="); split($5, q, "=")
                        ts = ts sprintf("%s%s %.3f s", ts == "" ? "" : ", ", $3, t[2] / 1000)
                        ps = ps sprintf("%s%s %s dB", ps == "" ? "" : ", ", $3, q[2]) }
        END { printf "PyTorch %s%s, network alone: %s; PSNR against ONNX Runtime: %s\n", head, cap, ts, ps }' "$B/torch.$lv"
done
[ -n "$TORCH_PY" ] || echo "PyTorch: not installed (python3-torch and python3-numpy, make deps): its columns are left empty"

# whole "ENV=..." IN OUT: 5 runs of the whole process; sets w_best, w_med
# (seconds) and w_rss (kB, the largest)
whole() {
    ts= w_rss=0
    for r in 1 2 3 4 5; do
        s=$(date +%s%N)
        env $1 /usr/bin/time -f '%M' -o "$B/time" ./stylefs stylize $ST --no-cache --max-side 0 udnie \
            "$2" "$3" 2>/dev/null
        e=$(date +%s%N)
        ts="$ts $(( (e - s) / 1000 ))"
        m=$(tail -n 1 "$B/time")
        [ "$m" -gt "$w_rss" ] && w_rss=$m
    done
    w_best=$(echo $ts | tr ' ' '\n' | sort -n | awk 'NR == 1 { print $1 / 1e6 }')
    w_med=$(echo $ts | tr ' ' '\n' | sort -n | awk 'NR == 3 { print $1 / 1e6 }')
}
row() {     # row LABEL NET_MS ORT_MS PT_MS [NOTE]
    awk -v s="$1" -v n="$2" -v b="$w_best" -v d="$w_med" -v m="$w_rss" -v o="$3" -v p="$4" -v note="${5:-}" \
        'BEGIN { printf "%-10s %8s %8.3f %8.3f %8.0f %8.3f %7.2f %7.2f %8s %7s %s\n", s, n == "" ? "" : sprintf("%.3f", n / 1000),
                 b, d, m / 1024, o / 1000, o / 1000 / b, o / 1000 / d,
                 p == "" ? "-" : sprintf("%.3f", p / 1000), p == "" ? "-" : sprintf("%.2f", p / 1000 / b), note }'
}
netms() { env "$@" | sed 's/.*median_ms=\([0-9.]*\).*/\1/'; }

for lv in $LEVELS; do
    [ "$lv" = generic ] && continue
    export STYLEFS_CPU_ISA=$lv
    echo
    echo "== level $lv$([ "$lv" = "$BEST" ] || echo " (STYLEFS_CPU_ISA=$lv, oneDNN capped likewise)") =="
    printf '%-10s %8s %8s %8s %8s %8s %7s %7s %8s %7s\n' size net_s best_s med_s rss_MB ort_s ratio r_med pt_s pt_rat
    for sz in 256 1024 2048; do
        net=$(netms build/tests/netbench "$SHARED/models" udnie ${sz}x$sz --runs 3)
        whole "" "$B/in$sz.ppm" "$B/out$sz.png"
        eval "ort=\$ort_$sz pt=\${pt_${lv}_$sz:-}"
        row "${sz}x$sz" "$net" "$ort" "$pt"
    done
    if [ "$lv" = "$BEST" ]; then
        # a 1 MP JPEG in and out (the format a photo usually has)
        build/tests/mkimg 1024 1024 "$B/in1024.jpg"
        whole "" "$B/in1024.jpg" "$B/out1024.jpg"
        row 1024x1024 "" "$ort_1024" "" "(JPEG in and out)"
        net=$(netms STYLEFS_CPU_BF16=0 build/tests/netbench "$SHARED/models" udnie 1024x1024 --runs 3)
        whole STYLEFS_CPU_BF16=0 "$B/in1024.ppm" "$B/out1024.png"
        row 1024x1024 "$net" "$ort_1024" "" "(STYLEFS_CPU_BF16=0: all float32)"
    fi
    echo "(ratio = ONNX Runtime network time / stylefs whole-process time, best and median; pt_rat = PyTorch network"
    echo " time at this level / stylefs best; higher is better)"
    # the peak again, right before the layers it is compared with: these
    # VMs' throughput changes from one minute to the next
    pk=$(build/tests/peak $lv 2 | sed 's/.*gflops=//')
    echo "per layer, 1024x1024, 2 threads, last of 2 passes (peak measured just before: $pk GFLOP/s at $lv;"
    echo "  Winograd layers count the direct convolution's operations, so they can pass 100%; in brackets"
    echo "  their share counting the multiply-adds they do, transforms' time included):"
    STYLEFS_PROFILE=1 build/tests/netbench "$SHARED/models" udnie 1024x1024 --runs 1 2>&1 |
        grep 'profile:' | tail -n 17 |
        awk -v pk="$pk" '/layer/ { sub(/^stylefs: profile: /, "");
                 # layer N conv X ms Y GFLOP/s  norm Z ms  impl...
                 impl = ""; for (i = 11; i <= NF; i++) impl = impl " " $i
                 # Winograd F(m x m, 3x3) does 9 m^2 / (m + 2)^2 fewer multiply-adds
                 done = ""
                 if (match(impl, /F\([0-9]+x/)) { m = substr(impl, RSTART + 2, RLENGTH - 3)
                     done = sprintf(" [%.0f%% counting the multiplies done]", 100 * $6 * (m + 2) ^ 2 / (9 * m * m) / pk) }
                 printf "  layer %2d %7.1f ms %6.1f GFLOP/s %4.0f%% of peak  norm %5.1f ms %s%s\n", $2, $4, $6, 100 * $6 / pk, $9, impl, done; next }
               { sub(/^stylefs: profile: /, "  "); print }'
    for t in 1 2; do
        ms=$(netms OMP_NUM_THREADS=$t build/tests/netbench "$SHARED/models" udnie 1024x1024 --runs 3)
        eval "th_$t=$ms"
    done
    awk -v a="$th_1" -v b="$th_2" 'BEGIN { printf "threads, 1 MP network: 1 thread %.3f s, 2 threads %.3f s (%.2fx)\n", a / 1000, b / 1000, a / b }'
    unset STYLEFS_CPU_ISA
done

echo
# The cost per pixel from 1 to 24 MP (issue 29: flat within 10%), the
# network alone at the best level (netbench): the first pass at a size,
# which plans it and touches its memory for the first time, and a later
# one (median of 3 at 1 and 4 MP, one at 12 and 24 MP), as the engine runs
# it (in bands from 6 MP up: their memory is freed after every pass, so
# every pass is a first) and as the whole image at once
# (STYLEFS_CPU_BANDS=0).  Then the machine's rate of first touch (peak
# touch): on these VMs memory new to a process cost 0.5-0.6 GB/s in some
# periods (about 2 s a GB: 2.3 s of a 12 MP whole image's first pass) and
# 6 GB/s in others (AMD EPYC Zen 5), so a first pass's cost per pixel
# rises with the memory it takes when the machine is slow to give it.
for sz in 1024x1024 2048x2048 4000x3000 5656x4242; do
    runs=3
    [ "$sz" = 4000x3000 ] || [ "$sz" = 5656x4242 ] && runs=1
    for mode in auto whole; do
        [ $mode = whole ] && [ $runs = 3 ] && continue
        env $([ $mode = whole ] && echo STYLEFS_CPU_BANDS=0) build/tests/netbench "$SHARED/models" udnie $sz --runs $runs
    done
done | awk '{ split($2, d, "x"); mp = d[1] * d[2] / 1e6
              for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
              warm = v["ms_per_mp"]; first = v["first_ms"] / mp
              if (NR == 1) { bw = warm; bf = first }
              printf "cost per pixel, network alone, %s (%.0f MP)%s: %.0f ms/MP (%+.0f%% against 1 MP), first pass %.0f ms/MP (%+.0f%%)\n",
                     $2, mp, (mp >= 6 ? (seen[$2]++ ? " whole image" : " in bands") : ""), warm, (warm / bw - 1) * 100,
                     first, (first / bf - 1) * 100 }'
build/tests/peak touch 1024 | awk '{ sub(/.*first_gbs=/, ""); split($0, r, " again_gbs=")
    printf "first touch of memory: %.2f GB/s the first time, %.1f GB/s again (1 GB, one thread)\n", r[1], r[2] }'

# Contention (issue 29: a 256x256 read with one core busy elsewhere costs
# at most 2.5x the idle figure): the whole `stylefs stylize` process at
# 256x256, median of 11, idle and beside a busy loop on the other core;
# also with OpenMP's threads sleeping at once when they wait
# (OMP_WAIT_POLICY=passive) instead of spinning first.
med11() {
    for r in 1 2 3 4 5 6 7 8 9 10 11; do
        s=$(date +%s%N)
        env "$@" ./stylefs stylize $ST --no-cache udnie "$B/in256.ppm" "$B/cont.png" 2>/dev/null
        echo $((($(date +%s%N) - s) / 1000))
    done | sort -n | sed -n 6p
}
ci=$(med11) cpi=$(med11 OMP_WAIT_POLICY=passive)
sh -c 'while :; do :; done' &
busy=$!
sleep 0.2
cb=$(med11) cpb=$(med11 OMP_WAIT_POLICY=passive)
kill $busy
awk -v a=$ci -v b=$cb -v c=$cpi -v d=$cpb 'BEGIN {
    printf "contention, 256x256 whole process, median of 11: idle %.3f s, one core busy %.3f s (%.2fx; aim 2.5x at most)\n", a / 1e6, b / 1e6, b / a
    printf "contention, the same with OMP_WAIT_POLICY=passive: idle %.3f s, one core busy %.3f s (%.2fx)\n", c / 1e6, d / 1e6, d / c }'

echo
# full size (--max-side 0, JPEG out) at a phone's 12, 24 and 48 MP: the
# banded pass the engine takes from 6 MP up (cpu/bands.c): time, s/MP,
# peak RSS and MB/MP, which should stay near flat in MB as the image grows
# (issue 26's aim: 48 MP within 1.5 GB).  At 12 MP also the whole-image
# pass (STYLEFS_CPU_BANDS=0), two rounds alternating, best of each: the
# banded pass's overhead (aim: 25% at most).
full() {    # full LABEL ENV... : one run of $B/full.ppm, "seconds kB" in $B/time.LABEL
    label=$1
    shift
    env "$@" /usr/bin/time -f '%e %M' -o "$B/time.$label" ./stylefs stylize $ST --no-cache --max-side 0 udnie \
        "$B/full.ppm" "$B/full.jpg" 2>"$B/full.err" || { echo "full size $label: failed: $(tail -1 "$B/full.err")"; return 1; }
}
row() {     # row W H SECONDS KB WHAT
    awk -v w=$1 -v h=$2 -v t=$3 -v k=$4 -v what="$5" 'BEGIN { mp = w * h / 1e6; printf "full size %s (%.0f MP): %.2f s, %.2f s/MP, peak RSS %.0f MB, %.0f MB/MP (%s)\n", w "x" h, mp, t, t / mp, k / 1024, k / 1024 / mp, what }'
}
for sz in 4000x3000 5656x4242 8064x6048; do
    w=${sz%x*} h=${sz#*x}
    build/tests/mkimg $w $h "$B/full.ppm"
    if [ $sz = 4000x3000 ]; then
        bt=999999 wt=999999
        for r in 1 2; do
            full whole STYLEFS_CPU_BANDS=0 && wt=$(awk -v a=$wt '{ print ($1 < a ? $1 : a) }' "$B/time.whole") &&
                wk=$(awk '{ print $2 }' "$B/time.whole")
            full bands && bt=$(awk -v a=$bt '{ print ($1 < a ? $1 : a) }' "$B/time.bands") &&
                bk=$(awk '{ print $2 }' "$B/time.bands")
        done
        row $w $h $wt $wk "whole image, best of 2"
        row $w $h $bt $bk "in bands, best of 2"
        awk -v a=$bt -v b=$wt -v c=$bk -v d=$wk 'BEGIN { printf "full size 12 MP: bands cost %+.0f%% of the whole-image time, in %.0f%% of its memory\n", (a / b - 1) * 100, c * 100 / d }'
    else
        full bands && row $w $h $(cat "$B/time.bands") "in bands"
    fi
    rm -f "$B/full.ppm" "$B/full.jpg"
done

# Paintings as styles (the arbitrary-style networks), per level: the whole
# `stylefs stylize` process at 1 MP with the style's vector already cached
# (5 different photos, so that no result is a cache hit), the predictor
# once, the transformer alone (build/tests/tflcheck) with its convolutions'
# share of the level's peak (each convolution's at the best level), and
# LiteRT's (wasm, XNNPACK) fp16 transformer at 384x384 per pixel.
if [ -f "$SHARED/arbitrary/transfer_fp16.tflite" ]; then
    echo
    AS=$B/arbstyles
    rm -rf "$AS" "$B/arbcache"
    mkdir -p "$AS"
    ln -s "$(cd "$SHARED/arbitrary" && pwd)" "$AS/arbitrary"
    build/tests/mkimg 256 256 "$AS/painting.ppm" --seed 201
    for i in 0 1 2 3 4 5; do build/tests/mkimg 1024 1024 "$B/arb$i.ppm" --seed $((300 + i)); done
    for lv in $LEVELS; do
        export STYLEFS_CPU_ISA=$lv
        c=$B/arbcache.$lv
        rm -rf "$c"
        s=$(date +%s%N)         # the first photo: the predictor too
        ./stylefs stylize --styles "$AS" --cache "$c" painting "$B/arb0.ppm" "$B/arbw.png" 2>/dev/null
        first=$((($(date +%s%N) - s) / 1000000))
        ts=
        for i in 1 2 3 4 5; do
            s=$(date +%s%N)
            /usr/bin/time -f '%M' -o "$B/time" ./stylefs stylize --styles "$AS" --cache "$c" painting \
                "$B/arb$i.ppm" "$B/arbo.png" 2>/dev/null
            ts="$ts $((($(date +%s%N) - s) / 1000000))"
        done
        echo "$ts" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk -v lv="$lv" -v f="$first" -v rss="$(cat "$B/time")" \
            '{ v[NR] = $1 } END { printf "painting style, 1 MP whole process at %s: best %.3f s, median %.3f s " \
              "(vector cached; first run with the predictor %.3f s), peak RSS %.0f MB\n", lv, v[1] / 1000, v[3] / 1000, \
              f / 1000, rss / 1024 }'
        # the transformer alone (tflcheck, the last of 3 runs), each
        # convolution's share of this level's 2-thread peak, measured just before
        pk=$(build/tests/peak $lv 2 | sed 's/.*gflops=//')
        STYLEFS_PROFILE=1 TFLCHECK_RUNS=3 build/tests/tflcheck transfer "$SHARED/arbitrary/transfer_fp16.tflite" \
            "$B/arb1.ppm" tests/golden/arb_bottleneck_s1.f32 "$B/arbt.ppm" >"$B/arbt.out" 2>&1 || true
        awk -v pk="$pk" -v lv="$lv" -v table="$([ "$lv" = "$BEST" ] && echo 1)" '
            # tflnet: op   3 conv 9x9 3->8 at 1024x1024:   23.8 ms (tconvp)
            /tflnet: op .* conv / { if ($3 == 3) n = 0      # op 3 starts a run: keep the last
                split($5, k, "x"); split($6, c, "->"); sub(":", "", $8); split($8, s, "x")
                f = 2 * k[1] * k[2] * c[1] * c[2] * s[1] * s[2]; ms = $9
                L[++n] = sprintf("  op %3d conv %-5s %-7s at %-9s %6.1f ms %6.1f GFLOP/s %4.0f%% of peak  %s", $3, $5, $6, $8, ms, f / ms / 1e6, 100 * f / ms / 1e6 / pk, $11)
                F[n] = f }
            /tflnet: convolutions/ { conv = $3; other = $7 }
            /^transfer/ { best = $0; sub(/.*best of 3 /, "", best); sub(/ ms.*/, "", best) }
            END { ft = 0; for (i = 1; i <= n; i++) ft += F[i]
                  printf "painting transformer alone at %s, 1 MP: best of 3 runs %s ms; the last run: convolutions %.1f ms, %.1f GFLOP: %.0f GFLOP/s, %.0f%% of the %s GFLOP/s peak; other ops %.1f ms\n", lv, best, conv, ft / 1e9, ft / conv / 1e6, 100 * ft / conv / 1e6 / pk, pk, other
                  if (table) for (i = 1; i <= n; i++) print L[i] }' "$B/arbt.out"
    done
    unset STYLEFS_CPU_ISA
    L=build/litert
    [ -d "$L/node_modules/@litertjs/core" ] ||
        npm install --prefix "$L" --ignore-scripts @litertjs/core@2.5.3 >/dev/null 2>&1
    build/tests/mkimg 384 384 "$B/arbc384.ppm" --seed 210
    if LITERT_NODE_MODULES="$PWD/$L/node_modules" node "$SHARED/anchors/litert_anchor.mjs" "$AS/painting.ppm" \
        "$B/arbc384.ppm" "$B/litert" >"$B/litert.log" 2>&1; then
        sed -n 's/^transfer fp16 run: .*best of rest \([0-9.]*\) ms.*/\1/p' "$B/litert.log" |
            awk '{ printf "LiteRT 2.5.3 (wasm CPU, XNNPACK) fp16 transformer at 384x384: %.1f ms, %.0f ns per pixel (x 1 MP: %.2f s)\n", $1, $1 * 1e6 / 147456, $1 / 147456 * 1048576 / 1000 }'
    else
        echo "LiteRT: not run ($(tail -1 "$B/litert.log"))"
    fi
fi

# the worker pool (issue 27): throughput against the number of workers, and
# the latency an offloaded read adds (tests/bench/workers.sh says how)
echo
SHARED=$SHARED sh tests/bench/workers.sh
