"""torch_bench.py: the same network and weights in PyTorch, for tests/gpu.sh.

usage: python3 tests/bench/torch_bench.py STYLE_DIR [--no-compile | --compile-only] [SIZE ...]
       python3 tests/bench/torch_bench.py STYLE_DIR --run IN.ppm OUT.ppm
         (one fp32 pass on a binary PPM, to check this model against stylefs)

Builds network.md's network from an ml5 checkpoint (TF SAME padding,
transposed convolutions cropped to 2n, instance norm eps 1e-3) and prints
the network time per pass, in ms (median of 20 after warm-up, timed with
CUDA events), for three configurations:
  fp32-eager        float32, NCHW, PyTorch defaults (cuDNN may use TF32)
  fp16-cl-bench     float16, channels_last, cudnn.benchmark = True
  compile           torch.compile of the fp16 channels_last model
One line per configuration and size: "torch CONFIG WxH median_ms=..".
--no-compile leaves out torch.compile, --compile-only runs only it (gpu.sh
runs it last: it is the slowest and the likeliest to fail).
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

SPEC = ([(9, 1, "c", 1, 0), (3, 2, "c", 1, 0), (3, 2, "c", 1, 0)]
        + [(3, 1, "c", 1, 0), (3, 1, "c", 0, 1)] * 5
        + [(3, 2, "d", 1, 0), (3, 2, "d", 1, 0), (9, 1, "c", 0, 0)])


def load(d):
    man = json.load(open(os.path.join(d, "manifest.json")))

    def t(i):
        e = man["Variable" if i == 0 else f"Variable_{i}"]
        a = np.fromfile(os.path.join(d, e["filename"]), dtype="<f4").reshape(e["shape"])
        return torch.from_numpy(a.copy())

    layers = []
    for li, (k, s, kind, relu, res) in enumerate(SPEC):
        # conv [kh][kw][cin][cout] -> [cout][cin][kh][kw];
        # deconv [kh][kw][cout][cin] -> [cin][cout][kh][kw] (conv_transpose2d)
        w = t(3 * li).permute(3, 2, 0, 1).contiguous()
        layers.append((k, s, kind, relu, res, w, t(3 * li + 2), t(3 * li + 1)))
    return layers


class Net(torch.nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.spec = [(k, s, kind, relu, res) for k, s, kind, relu, res, *_ in layers]
        self.w = torch.nn.ParameterList([torch.nn.Parameter(l[5], requires_grad=False) for l in layers])
        self.g = torch.nn.ParameterList([torch.nn.Parameter(l[6], requires_grad=False) for l in layers])
        self.b = torch.nn.ParameterList([torch.nn.Parameter(l[7], requires_grad=False) for l in layers])

    def forward(self, x):
        skip = None
        for i, (k, s, kind, relu, res) in enumerate(self.spec):
            if kind == "c" and s == 1:
                y = F.conv2d(x, self.w[i], padding=k // 2)
            elif kind == "c":
                h, w = x.shape[-2:]
                y = F.conv2d(F.pad(x, (w & 1, 1, h & 1, 1)), self.w[i], stride=2)
            else:
                h, w = x.shape[-2:]
                y = F.conv_transpose2d(x, self.w[i], stride=2)[..., : 2 * h, : 2 * w]
            y = F.instance_norm(y, weight=self.g[i], bias=self.b[i], eps=1e-3)
            if res:
                y = y + skip
            if relu:
                y = F.relu(y)
            if i >= 2 and i % 2 == 0 and i < 12:
                skip = y        # input of the next residual block
            x = y
        return torch.tanh(x) * 150 + 127.5


def bench(fn, x, runs=20):
    for _ in range(3):
        fn(x)
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn(x)
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def read_ppm(path):
    data = open(path, "rb").read()
    parts = data.split(maxsplit=4)
    w, h = int(parts[1]), int(parts[2])
    return np.frombuffer(parts[4][: w * h * 3], dtype=np.uint8).reshape(h, w, 3)


def run_one(style, src, dst):
    img = read_ppm(src)
    h, w = img.shape[:2]
    x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None].cuda()
    with torch.inference_mode():
        torch.backends.cudnn.allow_tf32 = False
        y = Net(load(style)).cuda().eval()(x)[0, :, :h, :w]
    out = (y.clamp(0, 255) + 0.5).floor().byte().permute(1, 2, 0).cpu().numpy()
    with open(dst, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h) + out.tobytes())


def main():
    style = sys.argv[1]
    if len(sys.argv) == 5 and sys.argv[2] == "--run":
        return run_one(style, sys.argv[3], sys.argv[4])
    args = sys.argv[2:]
    no_compile = "--no-compile" in args
    only_compile = "--compile-only" in args
    sizes = [int(s) for s in args if not s.startswith("--")] or [1024, 2048]
    net = Net(load(style)).cuda().eval()
    half = Net(load(style)).cuda().eval().half().to(memory_format=torch.channels_last)
    print(f"torch {torch.__version__} cudnn {torch.backends.cudnn.version()} on {torch.cuda.get_device_name()}")
    compiled = None
    with torch.inference_mode():
        for n in sizes:
            x = torch.rand(1, 3, n, n, device="cuda") * 255
            xh = x.half().to(memory_format=torch.channels_last)
            if not only_compile:
                torch.backends.cudnn.benchmark = False
                print(f"torch fp32-eager {n}x{n} median_ms={bench(net, x):.3f}", flush=True)
                torch.backends.cudnn.benchmark = True
                print(f"torch fp16-cl-bench {n}x{n} median_ms={bench(half, xh):.3f}", flush=True)
            if no_compile:
                continue
            torch.backends.cudnn.benchmark = True
            try:
                if compiled is None:
                    compiled = torch.compile(half)
                print(f"torch compile {n}x{n} median_ms={bench(compiled, xh):.3f}", flush=True)
            except Exception as e:  # torch.compile is optional there
                print(f"torch compile {n}x{n} failed: {type(e).__name__}: {str(e)[:200]}", flush=True)


if __name__ == "__main__":
    main()
