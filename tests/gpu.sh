#!/bin/bash
# gpu.sh: build output checked and timed on a GPU machine, in one call.
#
# Here (the development machine, which has nvcc and cuDNN but no GPU):
#     make devkit            # binaries, their Debian libraries, two styles,
#                            # the sample photos -> .devkit/ (git-ignored)
# There (the device tool, which has a GPU, PyTorch and cuDNN but none of
# our Debian libraries), from the repository root, carrying .devkit:
#     bash tests/gpu.sh
# It prints, and writes under $OUT (default /tmp/gpu-out):
#   1. the GPU, driver and cuDNN found;
#   2. every kernel against its CPU twin (gpu_check);
#   3. tests/t_gpu.sh: the CUDA engine against the CPU engine at 256x256,
#      1 MP, 999x751 and on the sample photos, a cold read through a mount,
#      the context released after gpu_idle;
#   4. the network alone (netbench): 1 MP and 4 MP, heuristic and
#      benchmarked cuDNN algorithms, with and without a CUDA graph, device
#      time, and 50 MP (max_pixels) once;
#   5. PyTorch on the same weights: fp32 eager, fp16 channels_last with
#      cudnn.benchmark, torch.compile (tests/torch_bench.py), and a check
#      that PyTorch's fp32 output matches ours;
#   6. through FUSE: a cold read of a 1 MP JPEG (first ever, and with the
#      engine warm), and images per second with 16 readers of different
#      1 MP files;
#   7. a summary table, last.
set -u
K=$PWD/.devkit
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
SUM=$OUT/summary.txt
: >"$SUM"
note() { echo "$*" | tee -a "$SUM"; }
[ -d "$K/bin" ] || { echo "gpu.sh: $K missing: run 'make devkit' on the build machine and carry .devkit"; exit 2; }

# --- libraries: ours from .devkit, CUDA's and cuDNN's from PyTorch's environment ---
NV=$(python3 -c "import nvidia.cudnn, os; print(os.path.dirname(os.path.dirname(nvidia.cudnn.__file__)))")
LIBS=$K/lib
for d in "$NV"/*/lib; do LIBS=$LIBS:$d; done
export LD_LIBRARY_PATH=$LIBS:${LD_LIBRARY_PATH:-}
export STYLEFS_CUDA_MODULE=$K/bin/stylefs-cuda.so
export PATH=$K/bin:$PATH
S="--styles $K/models"

echo "=== 1. machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
ldd "$STYLEFS_CUDA_MODULE" | grep -E 'cudnn|not found'
"$K/bin/stylefs" --version
nproc

echo "=== 2. kernels against their CPU twins"
"$K/bin/gpu_check" | tee "$OUT/gpu_check.txt"
note "kernels: $(grep -c ^PASS "$OUT/gpu_check.txt") pass, $(grep -c ^FAIL "$OUT/gpu_check.txt") fail"

echo "=== 3. the CUDA engine against the CPU engine (t_gpu.sh)"
mkdir -p build/tests "$OUT/t"
cp "$K/bin/stylefs" ./stylefs
cp "$K/bin/stylefs-cuda.so" ./stylefs-cuda.so
for b in mkimg imgcmp unit netbench; do cp "$K/bin/$b" build/tests/; done
SHARED=$K sh tests/t_gpu.sh "$OUT/t" 2>&1 | tee "$OUT/t_gpu.txt"
build/tests/unit "$K/models" "$OUT/t" 2>&1 | grep -E 'engine' | tee -a "$OUT/t_gpu.txt"
note "engine tests: $(grep -c ^PASS "$OUT/t_gpu.txt") pass, $(grep -c ^FAIL "$OUT/t_gpu.txt") fail, $(grep -c ^SKIP "$OUT/t_gpu.txt") skip"
grep -E '^(PASS|FAIL) gpu: CUDA engine matches' "$OUT/t_gpu.txt" | sed 's/^/  /' | tee -a "$SUM" >/dev/null

echo "=== 4. the network alone"
nb() { build/tests/netbench "$K/models" udnie "$@" 2>&1; }
for sz in 1024x1024 2048x2048; do
    note "$(nb $sz --device cuda --runs 30) [heuristics, graph]"
    note "$(STYLEFS_CUDA_FIND=1 nb $sz --device cuda --runs 30) [benchmarked algorithms, graph]"
    note "$(STYLEFS_CUDA_GRAPH=0 nb $sz --device cuda --runs 30) [heuristics, no graph]"
    STYLEFS_CUDA_TIMING=1 NETBENCH_VERBOSE=1 nb $sz --device cuda --runs 5 | grep 'on the device' | tail -1 | tee -a "$SUM"
done
note "$(nb 7071x7071 --device cuda --runs 2) [50 MP]"
note "$(OMP_NUM_THREADS=$(nproc) nb 1024x1024 --device cpu --runs 3) [CPU engine, $(nproc) threads]"

echo "=== 5. PyTorch on the same weights"
python3 tests/torch_bench.py "$K/models/udnie" 1024 2048 2>&1 | tee "$OUT/torch.txt" | tee -a "$SUM"
build/tests/mkimg 640 480 "$OUT/p.ppm" --seed 9
if python3 tests/torch_bench.py "$K/models/udnie" --run "$OUT/p.ppm" "$OUT/torch.ppm" &&
    ./stylefs stylize $S --no-cache --device cpu udnie "$OUT/p.ppm" "$OUT/ours.ppm"; then
    note "torch fp32 vs stylefs cpu: $(build/tests/imgcmp "$OUT/torch.ppm" "$OUT/ours.ppm")"
fi

echo "=== 6. through FUSE"
M=/tmp/gpu-mnt SRC=/tmp/gpu-src
mkdir -p $M $SRC
for i in $(seq 0 40); do build/tests/mkimg 1024 1024 $SRC/p$i.jpg --seed $((100 + i)); done
if [ -c /dev/fuse ] || modprobe fuse 2>/dev/null; then
    ./stylefs -f -o styles="$K/models",cache=/tmp/gpu-cache,device=cuda "$SRC" $M 2>"$OUT/daemon.log" &
    PID=$!
    for i in $(seq 100); do [ -d $M/styled ] && break; sleep 0.1; done
    ms() { local a b; a=$(date +%s%N); cat "$1" >/dev/null; b=$(date +%s%N); echo $(((b - a) / 1000)); }
    note "fuse: first read ever (context, plan, graph): $(ms $M/styled/udnie/p0.jpg) us"
    for i in 1 2 3 4 5; do note "fuse: cold read of a 1 MP JPEG, engine warm: $(ms $M/styled/udnie/p$i.jpg) us"; done
    note "fuse: hit: $(ms $M/styled/udnie/p1.jpg) us"
    a=$(date +%s%N)
    seq 6 37 | xargs -P 16 -I{} cat $M/styled/udnie/p{}.jpg >/dev/null
    b=$(date +%s%N)
    note "fuse: 16 readers, 32 cold 1 MP files: $(awk -v n=32 -v t=$(((b - a) / 1000)) 'BEGIN{printf "%.1f images/s (%.0f ms)", n / (t / 1e6), t / 1e3}')"
    cat $M/.stats | tr '\n' ' ' | sed 's/^/fuse counters: /' | tee -a "$SUM"; echo | tee -a "$SUM"
    fusermount3 -u $M 2>/dev/null || umount $M
    wait $PID
else
    note "fuse: /dev/fuse unavailable here; mount figures not taken"
fi
for i in 1 2 3; do
    a=$(date +%s%N)
    ./stylefs stylize $S --no-cache --device cuda udnie $SRC/p$i.jpg /tmp/o.jpg 2>/dev/null
    b=$(date +%s%N)
    note "stylize process, 1 MP JPEG, cuda (includes CUDA init): $(((b - a) / 1000000)) ms"
done

echo "=== 7. summary"
cat "$SUM"
