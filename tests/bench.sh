#!/bin/sh
# bench.sh: `make bench`: the CPU engine against ONNX Runtime, same run,
# same machine, same weights, 2 threads (OMP_NUM_THREADS, ORT --threads).
# For 256x256, 1 MP and 4 MP it prints:
#   net_s    stylefs network alone (build/tests/netbench, median of 3)
#   best_s   `stylefs stylize` as a process: load, decode, network, PNG
#   med_s    encode; best and median of 5 runs (wall clock)
#   rss_MB   that process's peak RSS (GNU time)
#   ort_s    ONNX Runtime's network alone (median of 5 after a warm-up run,
#            ../shared/anchors): no load, no codecs, no first touch of memory
#   ratio    ort_s / best_s (the goal is >= 2.5), and ort_s / med_s
# the 1 MP row again with a JPEG in and out, and with STYLEFS_CPU_BF16=0
# (all float32, where the CPU would otherwise run layers 13-15 in bf16),
# then a per-layer breakdown at 1 MP, 1- versus 2-thread scaling, and a
# 12 MP photo with --max-side 0 (time and peak RSS).
set -eu
B=build/bench
mkdir -p "$B"
. tests/ort_setup.sh
ort_model udnie
export OMP_NUM_THREADS=2
ST="--styles $SHARED/models"

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
row() {     # row LABEL NET_MS ORT_MS [NOTE]
    awk -v s="$1" -v n="$2" -v b="$w_best" -v d="$w_med" -v m="$w_rss" -v o="$3" -v note="${4:-}" \
        'BEGIN { printf "%-10s %8s %8.3f %8.3f %8.0f %8.3f %7.2f %7.2f %s\n", s, n == "" ? "" : sprintf("%.3f", n / 1000),
                 b, d, m / 1024, o / 1000, o / 1000 / b, o / 1000 / d, note }'
}

./stylefs stylize $ST --no-cache -v udnie tests/golden/in_128x128.ppm "$B/o.png" 2>&1 >/dev/null |
    sed -n 's/^stylefs: engine: /engine: /p' 2>/dev/null || true
printf '%-10s %8s %8s %8s %8s %8s %7s %7s\n' size net_s best_s med_s rss_MB ort_s ratio r_med
for sz in 256 1024 2048; do
    build/tests/mkimg $sz $sz "$B/in$sz.ppm"
    net=$(build/tests/netbench "$SHARED/models" udnie ${sz}x$sz --runs 3 | sed 's/.*median_ms=\([0-9.]*\).*/\1/')
    whole "" "$B/in$sz.ppm" "$B/out$sz.png"
    ort=$(NODE_PATH="$ORT/node_modules" node "$SHARED/anchors/ort_anchor.js" "$ORT/udnie.onnx" \
          "$B/in$sz.ppm" "$B/ort$sz.ppm" --runs 5 --threads 2 | tail -n 1 |
          sed 's/.*"median_ms":\([0-9.]*\).*/\1/')
    row "${sz}x$sz" "$net" "$ort"
    [ $sz = 1024 ] && ort1024=$ort
done
# a 1 MP JPEG in and out (the format a photo usually has): decode and encode
# through libjpeg-turbo instead of PPM in and PNG out
build/tests/mkimg 1024 1024 "$B/in1024.jpg"
whole "" "$B/in1024.jpg" "$B/out1024.jpg"
row 1024x1024 "" "$ort1024" "(JPEG in and out)"
# the same 1 MP row in float32 throughout
net=$(STYLEFS_CPU_BF16=0 build/tests/netbench "$SHARED/models" udnie 1024x1024 --runs 3 | sed 's/.*median_ms=\([0-9.]*\).*/\1/')
whole STYLEFS_CPU_BF16=0 "$B/in1024.ppm" "$B/out1024.png"
row 1024x1024 "$net" "$ort1024" "(STYLEFS_CPU_BF16=0: all float32)"
echo "(ratio = ONNX Runtime network time / stylefs whole-process time, best and median; higher is better)"

echo
echo "per-layer breakdown, 1024x1024, 2 threads (STYLEFS_PROFILE=1, last of 2 passes):"
STYLEFS_PROFILE=1 NETBENCH_VERBOSE=1 build/tests/netbench "$SHARED/models" udnie 1024x1024 --runs 1 2>&1 |
    grep 'profile:' | tail -n 17 | sed 's/^stylefs: profile: /  /'

echo
echo "thread scaling, network at 1024x1024:"
for t in 1 2; do
    ms=$(OMP_NUM_THREADS=$t build/tests/netbench "$SHARED/models" udnie 1024x1024 --runs 3 |
         sed 's/.*median_ms=\([0-9.]*\).*/\1/')
    awk -v t="$t" -v ms="$ms" 'BEGIN { printf "  threads %d: %.3f s\n", t, ms / 1000 }'
done

echo
build/tests/mkimg 4000 3000 "$B/in12mp.ppm"
/usr/bin/time -f '%e %M' -o "$B/time" ./stylefs stylize $ST --no-cache --max-side 0 udnie \
    "$B/in12mp.ppm" "$B/out12mp.jpg" 2>/dev/null
awk '{ printf "12 MP (4000x3000, --max-side 0, JPEG out): %.2f s, peak RSS %.0f MB (whole image, no bands)\n", $1, $2 / 1024 }' "$B/time"
