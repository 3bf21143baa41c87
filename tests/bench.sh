#!/bin/sh
# bench.sh: `make bench`: the CPU engine against ONNX Runtime, same run,
# same machine, same weights, 2 threads.  Prints network time (ORT) and
# whole-process time (stylefs stylize: load, decode, network, encode).
set -eu
B=build/bench
mkdir -p "$B"
. tests/ort_setup.sh
ort_model udnie
export OMP_NUM_THREADS=2
printf '%-10s %14s %14s %8s\n' size stylefs_s ort_net_s ratio
for sz in 256 1024; do
    build/tests/mkimg $sz $sz "$B/in$sz.ppm"
    best=
    for r in 1 2 3; do
        /usr/bin/time -f %e -o "$B/time" ./stylefs stylize --styles "$SHARED/models" --no-cache \
            --max-side 0 udnie "$B/in$sz.ppm" "$B/out$sz.png" 2>/dev/null
        t=$(cat "$B/time")
        best=$(echo "$t ${best:-$t}" | awk '{print ($1<$2)?$1:$2}')
    done
    ort=$(NODE_PATH="$ORT/node_modules" node "$SHARED/anchors/ort_anchor.js" "$ORT/udnie.onnx" \
          "$B/in$sz.ppm" "$B/ort$sz.ppm" --runs 3 --threads 2 | tail -n 1 |
          sed 's/.*"median_ms":\([0-9.]*\).*/\1/')
    awk -v s="${sz}x$sz" -v b="$best" -v o="$ort" \
        'BEGIN { printf "%-10s %14.3f %14.3f %8.2f\n", s, b, o / 1000, o / 1000 / b }'
done
echo "(ratio = ONNX Runtime network time / stylefs whole-process time; higher is better)"
