#!/bin/sh
# bench.sh: `make bench`: the CPU engine against ONNX Runtime, same run,
# same machine, same weights, 2 threads.  Prints network time (ORT) and
# whole-process time (stylefs stylize: load, decode, network, encode).
set -eu
SHARED=${SHARED:-../shared}
ORT=build/ort
B=build/bench
mkdir -p "$B" "$ORT"
[ -d "$ORT/node_modules/onnxruntime-node" ] ||
    npm install --prefix "$ORT" --ignore-scripts onnxruntime-node@1.30.0 >/dev/null 2>&1
[ -f "$ORT/udnie.onnx" ] || python3 "$SHARED/anchors/make_onnx.py" "$SHARED/models/udnie" "$ORT/udnie.onnx"
export OMP_NUM_THREADS=2
printf '%-10s %14s %14s %8s\n' size stylefs_s ort_net_s ratio
for sz in 256 1024; do
    build/tests/mkimg $sz $sz "$B/in$sz.ppm"
    best=
    for r in 1 2 3; do
        t=$( { /usr/bin/time -f %e ./stylefs stylize --styles "$SHARED/models" --no-cache --max-side 0 \
               udnie "$B/in$sz.ppm" "$B/out$sz.png" 2>/dev/null; } 2>&1 )
        best=$(echo "$t ${best:-$t}" | awk '{print ($1<$2)?$1:$2}')
    done
    ort=$(NODE_PATH="$ORT/node_modules" node "$SHARED/anchors/ort_anchor.js" "$ORT/udnie.onnx" \
          "$B/in$sz.ppm" "$B/ort$sz.ppm" --runs 3 --threads 2 | sed 's/.*"median_ms":\([0-9.]*\).*/\1/')
    printf '%-10s %14s %14.3f %8.2f\n' "${sz}x$sz" "$best" "$(echo "$ort / 1000" | bc -l)" \
        "$(echo "$ort / 1000 / $best" | bc -l)"
done
echo "(ratio = ONNX Runtime network time / stylefs whole-process time; higher is better)"
