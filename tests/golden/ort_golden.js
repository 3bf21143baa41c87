#!/usr/bin/env node
// ort_golden.js: runs the ONNX Runtime oracle (../shared/anchors) on one PPM
// and writes the exact-size result as PPM.  Unlike ort_anchor.js it reads
// the output tensor's real shape, so sizes that are not multiples of 4 are
// cropped to the source size (top-left) as stylefs does.
// usage: NODE_PATH=... node ort_golden.js MODEL.onnx IN.ppm OUT.ppm
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
  const [model, inPath, outPath] = process.argv.slice(2);
  const { w, h, px } = readPPM(inPath);
  const x = new Float32Array(3 * w * h);
  for (let i = 0; i < w * h; i++)
    for (let c = 0; c < 3; c++) x[c * w * h + i] = px[i * 3 + c];
  const sess = await ort.InferenceSession.create(model,
    { executionProviders: ['cpu'], intraOpNumThreads: 2, interOpNumThreads: 1 });
  const out = (await sess.run({ input: new ort.Tensor('float32', x, [1, 3, h, w]) })).output;
  const [, , oh, ow] = out.dims;
  const img = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let xx = 0; xx < w; xx++)
      for (let c = 0; c < 3; c++) {
        const v = out.data[c * oh * ow + y * ow + xx];
        img[(y * w + xx) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
  fs.writeFileSync(outPath, Buffer.concat([Buffer.from(`P6\n${w} ${h}\n255\n`), img]));
})().catch((e) => { console.error(e.message || e); process.exit(1); });
