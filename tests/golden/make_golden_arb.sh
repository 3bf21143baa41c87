#!/bin/sh
# make_golden_arb.sh: `make golden-arbitrary`: LiteRT's outputs for Magenta's
# arbitrary-style networks on synthetic images (tests/mkimg, never photos),
# the oracle files tests/t_arbitrary.sh compares against:
#   tests/golden/arb_bottleneck_sN.f32  the int8 predictor's 100 floats for
#                                       style image N (256x256, mkimg seed 200+N)
#   tests/golden/arb_fp16_384.png       the fp16 transformer's 8-bit output for
#                                       content 384x384 (seed 210) in style 1
# Installs @litertjs/core 2.5.3 from npm into build/litert (never into the
# repository) and runs ../shared/anchors/litert_anchor.mjs.
set -eu
SHARED=${SHARED:-../shared}
L=build/litert G=tests/golden
mkdir -p "$L" "$G"
[ -d "$L/node_modules/@litertjs/core" ] ||
    npm install --prefix "$L" --ignore-scripts @litertjs/core@2.5.3 >/dev/null 2>&1
build/tests/mkimg 384 384 "$L/content.ppm" --seed 210
for n in 1 2 3; do
    build/tests/mkimg 256 256 "$L/style$n.ppm" --seed $((200 + n))
    LITERT_NODE_MODULES="$PWD/$L/node_modules" node "$SHARED/anchors/litert_anchor.mjs" \
        "$L/style$n.ppm" "$L/content.ppm" "$L/out$n" --raw >"$L/log$n" 2>&1 || { cat "$L/log$n"; exit 1; }
    cp "$L/out${n}_bottleneck.f32" "$G/arb_bottleneck_s$n.f32"
done
# the 8-bit fp16 output as PNG (python's zlib: no image library needed)
python3 - "$L/out1_fp16.ppm" "$G/arb_fp16_384.png" <<'PY'
import sys, zlib, struct
d = open(sys.argv[1], 'rb').read()
f = d.split(b'\n', 3)
w, h = map(int, f[1].split()); px = f[3]
# filter 1 (Sub) on every row: a third smaller than unfiltered here
raw = bytearray()
for y in range(h):
    row = px[y * w * 3:(y + 1) * w * 3]
    raw += b'\1' + bytes((row[i] - (row[i - 3] if i >= 3 else 0)) & 255 for i in range(len(row)))
raw = bytes(raw)
def chunk(t, b): return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b) & 0xffffffff)
open(sys.argv[2], 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
                              chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))
PY
ls -l "$G"/arb_*
