#!/bin/bash
# gpu.sh: build output checked and timed on a GPU machine, in one call.
#
# Here (the development machine, which has nvcc and cuDNN but no GPU):
#     make devkit            # binaries, their Debian libraries, two styles,
#                            # the sample photos -> .devkit/ (git-ignored)
# There (the device tool, which has a GPU, PyTorch and cuDNN but none of
# our Debian libraries), from the repository root, carrying .devkit:
#     bash tests/gpu.sh
# It works in a scratch folder and copies a few small text files to $OUT
# (default /tmp/gpu-out; the device tool brings back at most 8 files, two
# folders deep): summary.txt, gpu_check.txt, t_gpu.txt, torch.txt,
# daemon.log.  Every section runs under a timeout, so that a hung mount or
# GPU call cannot eat the device window; the whole is about 5-6.5 minutes.
# It prints:
#   1. the GPU, driver and cuDNN found;
#   2. every kernel against its CPU twin (gpu_check);
#   3. tests/t_gpu.sh: the CUDA engine against the CPU engine at 256x256,
#      1 MP, 999x751 and on the sample photos, a cold read through a mount,
#      the context released after gpu_idle;
#   4. the network alone (netbench): 1 MP and 4 MP, heuristic and
#      benchmarked cuDNN algorithms, with and without a CUDA graph, device
#      time, and 50 MP (max_pixels) once;
#   5. PyTorch on the same weights: fp32 eager, fp16 channels_last with
#      cudnn.benchmark (tests/bench/torch_bench.py), and PyTorch's fp32 output
#      against ours on the CPU (float32) and on the GPU;
#   6. through FUSE: a cold read of a 1 MP JPEG (first ever, and with the
#      engine warm), and images per second with 16 readers of different
#      1 MP files;
#   7. torch.compile, last (slowest, likeliest to fail);
#   8. a summary table.
set -u
K=$PWD/.devkit
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
X=$(mktemp -d /tmp/gpu-work.XXXXXX)      # scratch: never under $OUT
SUM=$X/summary.txt
: >"$SUM"
note() { echo "$*" | tee -a "$SUM"; }
keep() { cp "$SUM" "$OUT/" 2>/dev/null; for f in gpu_check.txt t_gpu.txt torch.txt daemon.log; do
         [ -f "$X/$f" ] && tail -c 200000 "$X/$f" >"$OUT/$f"; done; }
trap keep EXIT
[ -d "$K/bin" ] || { echo "gpu.sh: $K missing: run 'make devkit' on the build machine and carry .devkit"; exit 2; }

# --- libraries: ours from .devkit, CUDA's and cuDNN's from PyTorch's environment ---
# nvidia is a namespace package in the CUDA 13 wheels (no __file__): use __path__
NV=$(python3 -c "import nvidia.cudnn, os; print(os.path.dirname(list(nvidia.cudnn.__path__)[0]))" 2>/dev/null)
if [ -z "$NV" ] || ! ls "$NV"/cudnn/lib/libcudnn.so* >/dev/null 2>&1; then
    note "gpu.sh: PyTorch's nvidia.cudnn package was not found (python3 -c 'import nvidia.cudnn'): no cuDNN to run with; stopping"
    exit 2
fi
LIBS=$K/lib
for d in "$NV"/*/lib; do LIBS=$LIBS:$d; done
export LD_LIBRARY_PATH=$LIBS:${LD_LIBRARY_PATH:-}
missing=$(for b in "$K"/bin/*; do ldd "$b" 2>/dev/null | grep 'not found' | sed "s|^|$(basename "$b"): |"; done)
if [ -n "$missing" ]; then
    note "gpu.sh: libraries missing from the devkit (make devkit copies what ldd lists); stopping:"
    note "$missing"
    exit 2
fi
export STYLEFS_CUDA_MODULE=$K/bin/stylefs-cuda.so
export PATH=$K/bin:$PATH
S="--styles $K/models"

echo "=== 1. machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
ldd "$STYLEFS_CUDA_MODULE" | grep -E 'cudnn|not found'
"$K/bin/stylefs" --version
nproc

echo "=== 2. kernels against their CPU twins"
timeout 120 "$K/bin/gpu_check" | tee "$X/gpu_check.txt"
note "kernels: $(grep -c ^PASS "$X/gpu_check.txt") pass, $(grep -c ^FAIL "$X/gpu_check.txt") fail"

echo "=== 3. the CUDA engine against the CPU engine (t_gpu.sh)"
mkdir -p build/tests "$X/t" "$X/u"
cp "$K/bin/stylefs" ./stylefs
cp "$K/bin/stylefs-cuda.so" ./stylefs-cuda.so
for b in mkimg imgcmp unit netbench; do cp "$K/bin/$b" build/tests/; done
SHARED=$K timeout 240 sh tests/t_gpu.sh "$X/t" 2>&1 | tee "$X/t_gpu.txt"
timeout 60 build/tests/unit "$K/models" "$X/u" 2>&1 | grep -E 'engine' | tee -a "$X/t_gpu.txt"
note "engine tests: $(grep -c ^PASS "$X/t_gpu.txt") pass, $(grep -c ^FAIL "$X/t_gpu.txt") fail, $(grep -c ^SKIP "$X/t_gpu.txt") skip"
grep -E '^(PASS|FAIL) gpu: ' "$X/t_gpu.txt" | cut -c1-200 | sed 's/^/  /' | tee -a "$SUM" >/dev/null

echo "=== 4. the network alone"
nb() { timeout 120 build/tests/netbench "$K/models" udnie "$@" 2>&1; }
for sz in 1024x1024 2048x2048; do
    # whether the CUDA graph was captured (else the engine runs launch by launch)
    NETBENCH_VERBOSE=1 nb $sz --device cuda --runs 1 | grep -E 'graph (yes|no)|graph capture failed' | head -2 |
        sed 's/^/  /' | tee -a "$SUM"
    note "$(nb $sz --device cuda --runs 30) [heuristics, graph]"
    note "$(STYLEFS_CUDA_FIND=1 nb $sz --device cuda --runs 30) [benchmarked algorithms, graph]"
    note "$(STYLEFS_CUDA_GRAPH=0 nb $sz --device cuda --runs 30) [heuristics, no graph]"
    STYLEFS_CUDA_TIMING=1 NETBENCH_VERBOSE=1 nb $sz --device cuda --runs 5 | grep 'on the device' | tail -1 | tee -a "$SUM"
done
note "$(nb 7071x7071 --device cuda --runs 2) [50 MP]"
note "$(OMP_NUM_THREADS=$(nproc) nb 1024x1024 --device cpu --runs 3) [CPU engine, $(nproc) threads]"

echo "=== 5. PyTorch on the same weights"
timeout 240 python3 tests/bench/torch_bench.py "$K/models/udnie" --no-compile 1024 2048 2>&1 | tee "$X/torch.txt" | tee -a "$SUM"
build/tests/mkimg 640 480 "$X/p.ppm" --seed 9
if timeout 120 python3 tests/bench/torch_bench.py "$K/models/udnie" --run "$X/p.ppm" "$X/torch.ppm"; then
    # stylefs writes PNG (not PPM); the CPU reference in float32
    STYLEFS_CPU_BF16=0 timeout 60 ./stylefs stylize $S --no-cache --device cpu udnie "$X/p.ppm" "$X/ours-cpu.png" &&
        note "torch fp32 vs stylefs cpu (float32): $(build/tests/imgcmp "$X/torch.ppm" "$X/ours-cpu.png")"
    timeout 60 ./stylefs stylize $S --no-cache --device cuda udnie "$X/p.ppm" "$X/ours-cuda.png" &&
        note "torch fp32 vs stylefs cuda: $(build/tests/imgcmp "$X/torch.ppm" "$X/ours-cuda.png")"
else
    note "torch --run failed: no PyTorch comparison"
fi

echo "=== 6. through FUSE"
M=/tmp/gpu-mnt SRC=/tmp/gpu-src
mkdir -p $M $SRC
for i in $(seq 0 40); do build/tests/mkimg 1024 1024 $SRC/p$i.jpg --seed $((100 + i)); done
if [ -c /dev/fuse ] || modprobe fuse 2>/dev/null; then
    ./stylefs -f -o styles="$K/models",cache=$X/gpu-cache,device=cuda "$SRC" $M 2>"$X/daemon.log" &
    PID=$!
    for i in $(seq 100); do [ -d $M/styled ] && break; sleep 0.1; done
    ms() { local a b; a=$(date +%s%N); timeout 60 cat "$1" >/dev/null || echo "(read failed) "; b=$(date +%s%N); echo $(((b - a) / 1000)); }
    if [ ! -d $M/styled ]; then
        note "fuse: the mount did not come up: $(tail -3 "$X/daemon.log"); no mount figures"
    else
    note "fuse: first read ever (context, plan, graph): $(ms $M/styled/udnie/p0.jpg) us"
    for i in 1 2 3 4 5; do note "fuse: cold read of a 1 MP JPEG, engine warm: $(ms $M/styled/udnie/p$i.jpg) us"; done
    note "fuse: hit: $(ms $M/styled/udnie/p1.jpg) us"
    a=$(date +%s%N)
    seq 6 37 | timeout 120 xargs -P 16 -I{} cat $M/styled/udnie/p{}.jpg >/dev/null
    b=$(date +%s%N)
    note "fuse: 16 readers, 32 cold 1 MP files: $(awk -v n=32 -v t=$(((b - a) / 1000)) 'BEGIN{printf "%.1f images/s (%.0f ms)", n / (t / 1e6), t / 1e3}')"
    cat $M/.stats | tr '\n' ' ' | sed 's/^/fuse counters: /' | tee -a "$SUM"; echo | tee -a "$SUM"
    fi
    fusermount3 -u $M 2>/dev/null || umount -l $M
    for i in $(seq 100); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
    kill -9 $PID 2>/dev/null
else
    note "fuse: /dev/fuse unavailable here; mount figures not taken"
fi
for i in 1 2 3; do
    a=$(date +%s%N)
    timeout 60 ./stylefs stylize $S --no-cache --device cuda udnie $SRC/p$i.jpg $X/o.jpg 2>/dev/null
    b=$(date +%s%N)
    note "stylize process, 1 MP JPEG, cuda (includes CUDA init): $(((b - a) / 1000000)) ms"
done

echo "=== 7. torch.compile (last: the slowest, and the likeliest to fail)"
timeout 240 python3 tests/bench/torch_bench.py "$K/models/udnie" --compile-only 1024 2048 2>&1 | tee -a "$X/torch.txt" |
    tee -a "$SUM"

echo "=== 8. summary"
cat "$SUM"
