#!/bin/sh
# run.sh: the test suite behind `make test`.
# Runs the C unit tests and every tests/t_*.sh, each of which prints
# "PASS name", "FAIL name: why" or "SKIP name: why", then prints the totals
# as "N passed, N failed, N skipped" and exits 1 if anything failed.
SHARED=${SHARED:-../shared}
export SHARED
T=$(mktemp -d "${TMPDIR:-/tmp}/stylefs-test.XXXXXX")
export T
LOG=$T/results
: >"$LOG"

run() {
    # a test program that dies without reporting counts as a failure
    "$@" 2>>"$T/stderr.log" | tee -a "$LOG"
}

if [ ! -d "$SHARED/models" ]; then
    echo "FAIL setup: $SHARED/models not found (set SHARED=...)" | tee -a "$LOG"
else
    # test programs outside the binary's folder find the CUDA module here
    [ -f stylefs-cuda.so ] && STYLEFS_CUDA_MODULE=$PWD/stylefs-cuda.so && export STYLEFS_CUDA_MODULE
    mkdir -p "$T/unit"
    run build/tests/unit "$SHARED/models" "$T/unit"
    [ -x build/tests/gpu_check ] && run build/tests/gpu_check
    for t in tests/t_*.sh; do
        mkdir -p "$T/$(basename "$t" .sh)"
        run sh "$t" "$T/$(basename "$t" .sh)"
    done
fi

p=$(grep -c '^PASS' "$LOG")
f=$(grep -c '^FAIL' "$LOG")
s=$(grep -c '^SKIP' "$LOG")
if [ "$f" -gt 0 ]; then
    echo "--- stderr of the failing run (last 40 lines) ---"
    tail -n 40 "$T/stderr.log"
fi
echo "$p passed, $f failed, $s skipped"
if [ "$f" -eq 0 ]; then rm -rf "$T"; else echo "(test files kept in $T)"; fi
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
