#!/bin/sh
# t_gpu.sh: choosing the engine, the CPU fallback, and (where a GPU is
# present) the CUDA engine against the CPU engine.
#
# Everywhere: --version names the engines; a missing or broken CUDA module
# and a machine without a GPU make `auto` fall back to the CPU and say why
# in the log, and make `cuda` fail with a clear message, for both stylize
# and the mount.  With a GPU: at 256x256, 1 MP and an odd size, the GPU's
# output has >= 99% of 8-bit values within 2 of the CPU's and PSNR >= 40 dB;
# a cold read through a mount on the GPU gives the same; the GPU context is
# released after gpu_idle.  Without a GPU those print SKIP.
W=$1
. tests/lib.sh
S="--styles $STYLES"
$MK 48 40 "$W/in.ppm" --seed 7

# --- selection and fallback, on every machine -------------------------------------
if v=$($SF --version) && echo "$v" | grep -q 'cpu (oneDNN' && echo "$v" | grep -q 'cuda'; then
    pass "engines: --version names them ($(echo "$v" | sed -n 's/^engines: //p' | cut -c1-90))"
else
    fail "engines: --version names them" "$v"
fi

# auto looks for the driver first: without one the module is never loaded
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    AUTO_NOMOD='engine: cpu (auto: stylefs-cuda.so not found'
    AUTO_BROKEN="engine: cpu (auto: cannot load $W/broken.so"
else
    AUTO_NOMOD='engine: cpu (auto: no NVIDIA driver (libcuda.so.1 not found))'
    AUTO_BROKEN=$AUTO_NOMOD
fi
STYLEFS_CUDA_MODULE=$W/none.so $SF stylize -v $S --no-cache --device auto udnie "$W/in.ppm" "$W/o.png" 2>"$W/err"
rc=$?
if [ $rc -eq 0 ] && grep -qF "$AUTO_NOMOD" "$W/err"; then
    pass "fallback: auto without the CUDA module runs on the CPU and logs why"
else
    fail "fallback: auto without the CUDA module runs on the CPU and logs why" "rc=$rc $(cat "$W/err")"
fi
STYLEFS_CUDA_MODULE=$W/none.so expect_status "fallback: --device cuda without the module exits 1" 1 \
    $SF stylize $S --no-cache --device cuda udnie "$W/in.ppm" "$W/o.png"
expect_err "fallback: ... and says the module is missing" "device cuda: stylefs-cuda.so not found"

echo "not a shared object" >"$W/broken.so"
STYLEFS_CUDA_MODULE=$W/broken.so $SF stylize -v $S --no-cache --device auto udnie "$W/in.ppm" "$W/o.png" 2>"$W/err"
rc=$?
if [ $rc -eq 0 ] && grep -qF "$AUTO_BROKEN" "$W/err"; then
    pass "fallback: auto with a broken module runs on the CPU and logs why"
else
    fail "fallback: auto with a broken module runs on the CPU and logs why" "rc=$rc $(cat "$W/err")"
fi
STYLEFS_CUDA_MODULE=$W/broken.so expect_status "fallback: --device cuda with a broken module exits 1" 1 \
    $SF stylize $S --no-cache --device cuda udnie "$W/in.ppm" "$W/o.png"
expect_err "fallback: ... and says it cannot load it" "device cuda: cannot load $W/broken.so"

# Is there a GPU?  The real module decides.
if $SF stylize $S --no-cache --device cuda udnie "$W/in.ppm" "$W/o.png" 2>"$W/err"; then
    GPU=1
else
    GPU=
    if [ ! -f ./stylefs-cuda.so ]; then
        skip "fallback: no GPU here" "this build has no CUDA module (nvcc not found)"
    elif grep -qE 'device cuda: (no NVIDIA driver|no usable NVIDIA GPU|.*tensor cores|cuDNN)' "$W/err"; then
        pass "fallback: --device cuda on a machine without a GPU fails clearly ($(head -c 120 "$W/err"))"
        $SF stylize -v $S --no-cache --device auto udnie "$W/in.ppm" "$W/o.png" 2>"$W/err" &&
            grep -q 'engine: cpu (auto: no' "$W/err" &&
            pass "fallback: auto on a machine without a GPU runs on the CPU and logs why" ||
            fail "fallback: auto on a machine without a GPU runs on the CPU and logs why" "$(cat "$W/err")"
        mkdir -p "$W/s" "$W/m"
        expect_status "fallback: mounting with device=cuda and no GPU exits 1" 1 \
            $SF -o styles="$STYLES",device=cuda "$W/s" "$W/m"
        expect_err "fallback: ... and says why" "device cuda: no"
    else
        fail "fallback: --device cuda on a machine without a GPU fails clearly" "$(cat "$W/err")"
    fi
fi

# --- the GPU engine against the CPU engine ----------------------------------------
# (the CPU side in float32 throughout, STYLEFS_CPU_BF16=0: the reference)
if [ -z "$GPU" ]; then
    skip "gpu: CUDA engine matches the CPU engine at 256x256, 1 MP and 999x751" "no usable GPU here"
    skip "gpu: a cold read through the mount on the GPU" "no usable GPU here"
    skip "gpu: context released after gpu_idle" "no usable GPU here"
    skip "gpu: a read after the release reopens the GPU" "no usable GPU here"
    finish
fi
for sz in 256x256 1024x1024 999x751; do
    $MK ${sz%x*} ${sz#*x} "$W/g$sz.ppm" --seed 3
    name="gpu: CUDA engine matches the CPU engine at $sz (99% within 2, PSNR >= 40)"
    # (outputs as PNG: stylefs writes JPEG, PNG, BMP and TGA, not PPM)
    if STYLEFS_CPU_BF16=0 $SF stylize $S --no-cache --max-side 0 --device cpu udnie "$W/g$sz.ppm" "$W/c$sz.png" 2>"$W/err" &&
        $SF stylize $S --no-cache --max-side 0 --device cuda udnie "$W/g$sz.ppm" "$W/u$sz.png" 2>>"$W/err" &&
        r=$($CMP "$W/c$sz.png" "$W/u$sz.png" --within2 0.99 --psnr 40); then
        pass "$name ($r)"
    else
        fail "$name" "$r $(cat "$W/err")"
    fi
done
for f in "$SHARED"/images/*.jpg; do
    [ -f "$f" ] || continue
    b=$(basename "$f" .jpg)
    name="gpu: CUDA engine matches the CPU engine on $b.jpg"
    if STYLEFS_CPU_BF16=0 $SF stylize $S --no-cache --device cpu udnie "$f" "$W/c$b.png" 2>"$W/err" &&
        $SF stylize $S --no-cache --device cuda udnie "$f" "$W/u$b.png" 2>>"$W/err" &&
        r=$($CMP "$W/c$b.png" "$W/u$b.png" --within2 0.99 --psnr 40); then
        pass "$name ($r)"
    else
        fail "$name" "$r $(cat "$W/err")"
    fi
done

# a variant (strength and colours, finished on the CPU after the engine)
# of a network run with mirror padding ("stylefs": {"pad": 48}), as
# make models sets for la_muse: the same on both engines
STY=${S#--styles }
mkdir -p "$W/padded/udnie"
cp "$STY/udnie/"* "$W/padded/udnie/"
sed -i '0,/{/s//{"stylefs": {"pad": 48}, /' "$W/padded/udnie/manifest.json"
name="gpu: udnie@50+colors with 48 pixels of mirror padding: CUDA matches CPU at 999x751"
if STYLEFS_CPU_BF16=0 $SF stylize --styles "$W/padded" --no-cache --max-side 0 --device cpu udnie@50+colors \
        "$W/g999x751.ppm" "$W/cv.png" 2>"$W/err" &&
    $SF stylize --styles "$W/padded" --no-cache --max-side 0 --device cuda udnie@50+colors "$W/g999x751.ppm" \
        "$W/uv.png" 2>>"$W/err" &&
    r=$($CMP "$W/cv.png" "$W/uv.png" --within2 0.99 --psnr 40) && ! cmp -s "$W/uv.png" "$W/u999x751.png"; then
    pass "$name ($r)"
else
    fail "$name" "$r $(cat "$W/err")"
fi

# through a mount on the GPU, with a short gpu_idle: a cold read, the
# context released, then a read that reopens it
if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; then
    mkdir -p "$W/src" "$W/mnt"
    cp "$W/g256x256.ppm" "$W/src/a.ppm"
    # b: other bytes (keys are by content: a copy of a would be a hit and
    # never reopen the GPU), with its CPU reference
    $MK 256 256 "$W/src/b.ppm" --seed 4
    STYLEFS_CPU_BF16=0 $SF stylize $S --no-cache --max-side 0 --device cpu udnie "$W/src/b.ppm" "$W/cb.png" 2>/dev/null
    $SF -f -v -o styles="$STYLES",cache="$W/cache",device=cuda,gpu_idle=2 "$W/src" "$W/mnt" 2>"$W/daemon.log" &
    PID=$!
    for i in $(seq 50); do [ -d "$W/mnt/styled" ] && break; sleep 0.1; done
    if [ ! -d "$W/mnt/styled" ]; then
        fail "gpu: a cold read through the mount on the GPU" "the mount did not come up: $(tail -3 "$W/daemon.log")"
    elif timeout 60 cp "$W/mnt/styled/udnie/a.ppm.png" "$W/m.png" 2>"$W/err" &&
        r=$($CMP "$W/c256x256.png" "$W/m.png" --within2 0.99 --psnr 40); then
        pass "gpu: a cold read through the mount on the GPU ($r)"
    else
        fail "gpu: a cold read through the mount on the GPU" "$r $(cat "$W/err") $(tail -3 "$W/daemon.log")"
    fi
    sleep 4
    if grep -q 'engine: cuda released after 2 s idle' "$W/daemon.log" &&
        ! { command -v nvidia-smi >/dev/null &&
            nvidia-smi --query-compute-apps=pid --format=csv,noheader | grep -qw "$PID"; }; then
        pass "gpu: context released after gpu_idle (no GPU memory held)"
    else
        fail "gpu: context released after gpu_idle" "$(tail -5 "$W/daemon.log")"
    fi
    if timeout 60 cp "$W/mnt/styled/udnie/b.ppm.png" "$W/m2.png" 2>"$W/err" &&
        grep -q 'engine: cuda reopened' "$W/daemon.log" && ! grep -q 'switching to cpu' "$W/daemon.log" &&
        r=$($CMP "$W/cb.png" "$W/m2.png" --within2 0.99 --psnr 40); then
        pass "gpu: a read after the release reopens the GPU ($r)"
    else
        fail "gpu: a read after the release reopens the GPU" "$r $(cat "$W/err") $(tail -5 "$W/daemon.log")"
    fi
    fusermount3 -u "$W/mnt" 2>/dev/null
    for i in $(seq 100); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
    kill -0 $PID 2>/dev/null && { kill -9 $PID; fail "gpu: the daemon ends at unmount" "killed after 10 s"; }
else
    skip "gpu: a cold read through the mount on the GPU" "/dev/fuse unusable here"
fi
finish
