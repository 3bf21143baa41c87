#!/bin/sh
# make_golden.sh: regenerates tests/golden/ with the ONNX Runtime oracle of
# ../shared/anchors.  Needs node and npm (onnxruntime-node is installed into
# build/ort, not into the repository).  The inputs are synthetic (mkimg), so
# nothing here is a photo or a weight.
#   usage: sh tests/golden/make_golden.sh   (or: make golden)
set -eu
G=tests/golden
mkdir -p "$G"
. tests/golden/ort_setup.sh
build/tests/mkimg 64 64 "$G/in_64x64.ppm" --seed 1
build/tests/mkimg 37 29 "$G/in_37x29.ppm" --seed 3
build/tests/mkimg 128 128 "$G/in_128x128.ppm" --seed 5   # the CPU's bf16 path
for s in udnie wave scream; do
    ort_model $s
    for sz in 64x64 37x29 128x128; do
        NODE_PATH="$ORT/node_modules" node tests/golden/ort_golden.js "$ORT/$s.onnx" \
            "$G/in_$sz.ppm" "$G/${s}_$sz.ppm"
    done
done
# a style run with extra mirror padding (its manifest's "stylefs" pad, as
# `make models` writes for la_muse): the oracle pads and crops the same way
ort_model la_muse
for sz in 64x64 37x29; do
    NODE_PATH="$ORT/node_modules" node tests/golden/ort_golden.js "$ORT/la_muse.onnx" \
        "$G/in_$sz.ppm" "$G/la_muse_pad48_$sz.ppm" 48
done
echo "golden files written to $G"
