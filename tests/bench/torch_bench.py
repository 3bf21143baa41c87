"""torch_bench.py: the same network and weights in PyTorch, the peer of
tests/gpu.sh (CUDA) and of make bench (CPU).

usage: python3 tests/bench/torch_bench.py STYLE_DIR [--no-compile | --compile-only] [SIZE ...]
       python3 tests/bench/torch_bench.py STYLE_DIR --run IN.ppm OUT.ppm
         (one fp32 pass on a binary PPM, to check this model against stylefs)
       python3 tests/bench/torch_bench.py STYLE_DIR --cpu [--threads N] [--runs N] IN.ppm REF.ppm ...
         (make bench: the CPU peer)

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

--cpu times the float32 network on the CPU for each pair IN.ppm REF.ppm
(binary PPMs; REF is the ONNX Runtime oracle's output for IN): N threads
(torch.set_num_threads, default 2), one warm-up pass, then the median of
--runs (default 5) passes, under torch.inference_mode.  The instruction
set is the process's: make bench caps it with ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2.  Layers 13-14 run rewritten (Net(rewrite=True)):
PyTorch's CPU conv_transpose2d with stride 2 takes a slow reference path
(8.6 s at 1 MP, issue 29), so each is one 2x2 convolution with 4 x C_out
outputs, one per output pixel phase, and a pixel_shuffle; the same sums, in
another order.  One line per pair: "torch cpu WxH median_ms=.. psnr=.."
(PSNR of the 8-bit output against REF, in dB), and first "torch cpu:
VERSION, CAPABILITY, N threads".
"""
import json
import os
import sys
import time

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


def phases(w):
    """A stride-2 3x3 transposed convolution's weight [cin][cout][3][3] as
    one 2x2 convolution's [cout*4][cin][2][2], output channel o*4 + 2a + b
    for output pixel (2m + a, 2n + b), over the input padded by one row
    above and one column to the left (tap 0 reads m - 1, tap 1 reads m):
    phase 0 takes kernel taps 2 (at m - 1) and 0 (at m), phase 1 takes tap 1
    (at m) only."""
    cin, cout = w.shape[:2]
    k = torch.zeros(cout, 2, 2, cin, 2, 2)
    tap = {(0, 0): 2, (0, 1): 0, (1, 1): 1}     # (phase, tap) -> kernel index
    for (a, dy), ky in tap.items():
        for (b, dx), kx in tap.items():
            k[:, a, b, :, dy, dx] = w[:, :, ky, kx].t()
    return k.reshape(cout * 4, cin, 2, 2).contiguous()


class Net(torch.nn.Module):
    def __init__(self, layers, rewrite=False):
        super().__init__()
        self.spec = [(k, s, kind, relu, res) for k, s, kind, relu, res, *_ in layers]
        self.rewrite = rewrite
        if rewrite:
            layers = [l[:5] + ((phases(l[5]),) if l[2] == "d" else (l[5],)) + l[6:] for l in layers]
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
            elif self.rewrite:
                y = F.pixel_shuffle(F.conv2d(F.pad(x, (1, 0, 1, 0)), self.w[i]), 2)
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
    out = to8(y.cpu())
    with open(dst, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h) + out.tobytes())


def to8(y):
    return (y.clamp(0, 255) + 0.5).floor().byte().permute(1, 2, 0).numpy()


def cpu_peer(style, args):
    """--cpu: the CPU peer of make bench (see the module's comment)."""
    threads, runs, files = 2, 5, []
    it = iter(args)
    for a in it:
        if a == "--threads":
            threads = int(next(it))
        elif a == "--runs":
            runs = int(next(it))
        else:
            files.append(a)
    if not files or len(files) % 2:
        sys.exit("--cpu: give pairs IN.ppm REF.ppm")
    torch.set_num_threads(threads)
    cap = [l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines() if "CPU capability" in l]
    print(f"torch cpu: {torch.__version__}, {cap[0] if cap else 'capability not reported'}, "
          f"{torch.get_num_threads()} threads", flush=True)
    net = Net(load(style), rewrite=True).eval()
    with torch.inference_mode():
        for src, ref in zip(files[::2], files[1::2]):
            img = read_ppm(src)
            h, w = img.shape[:2]
            x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None].contiguous()
            y = net(x)                                  # the warm-up, kept for the PSNR
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                net(x)
                times.append((time.perf_counter() - t0) * 1000)
            d = to8(y[0, :, :h, :w]).astype(np.float64) - read_ppm(ref).astype(np.float64)
            mse = (d * d).mean()
            psnr = 10 * np.log10(255 * 255 / mse) if mse else float("inf")
            print(f"torch cpu {w}x{h} median_ms={sorted(times)[runs // 2]:.1f} psnr={psnr:.1f}", flush=True)


def main():
    style = sys.argv[1]
    if len(sys.argv) == 5 and sys.argv[2] == "--run":
        return run_one(style, sys.argv[3], sys.argv[4])
    if len(sys.argv) > 2 and sys.argv[2] == "--cpu":
        return cpu_peer(style, sys.argv[3:])
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
