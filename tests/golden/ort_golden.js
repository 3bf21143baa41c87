#!/usr/bin/env node
// ort_golden.js: runs the ONNX Runtime oracle (../shared/anchors) on one PPM
// and writes the exact-size result as PPM.  Unlike ort_anchor.js it reads
// the output tensor's real shape, so sizes that are not multiples of 4 are
// cropped to the source size (top-left) as stylefs does.
// With PAD, the input is first mirrored out by PAD pixels on each side
// (reflection without repeating the edge) and the output cropped back, as
// stylefs runs a style whose manifest asks for it ("stylefs": {"pad": N}).
// usage: NODE_PATH=... node ort_golden.js MODEL.onnx IN.ppm OUT.ppm [PAD]
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function readPPM(path) {
  const b = fs.readFileSync(path);
  const m = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(b.toString('latin1', 0, 64));
  if (!m) throw new Error(path + ': not a P6 PPM with maxval 255');
  return { w: +m[1], h: +m[2], px: b.subarray(m[0].length) };
}

(async () => {
  const [model, inPath, outPath, padArg] = process.argv.slice(2);
  const src = readPPM(inPath), pad = +(padArg || 0);
  const mirror = (i, n) => { const p = 2 * n - 2; if (n === 1) return 0; i %= p; if (i < 0) i += p; return i < n ? i : p - i; };
  const w = src.w + 2 * pad, h = src.h + 2 * pad;
  const x = new Float32Array(3 * w * h);
  for (let y = 0; y < h; y++)
    for (let xx = 0; xx < w; xx++)
      for (let c = 0; c < 3; c++)
        x[c * w * h + y * w + xx] = src.px[(mirror(y - pad, src.h) * src.w + mirror(xx - pad, src.w)) * 3 + c];
  const sess = await ort.InferenceSession.create(model,
    { executionProviders: ['cpu'], intraOpNumThreads: 2, interOpNumThreads: 1 });
  const out = (await sess.run({ input: new ort.Tensor('float32', x, [1, 3, h, w]) })).output;
  const [, , oh, ow] = out.dims;
  const img = Buffer.alloc(src.w * src.h * 3);
  for (let y = 0; y < src.h; y++)
    for (let xx = 0; xx < src.w; xx++)
      for (let c = 0; c < 3; c++) {
        const v = out.data[c * oh * ow + (y + pad) * ow + xx + pad];
        img[(y * src.w + xx) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
  fs.writeFileSync(outPath, Buffer.concat([Buffer.from(`P6\n${src.w} ${src.h}\n255\n`), img]));
})().catch((e) => { console.error(e.message || e); process.exit(1); });
