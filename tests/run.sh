#!/bin/sh
# run.sh: the test suite behind `make test`.
# Runs the C test programs (unit, kernels, gpu_check) and every
# tests/t_*.sh, each of which prints "PASS name", "FAIL name: why" or
# "SKIP name: why" per check and ends with the line "END <script>".  Then
# prints the totals as "N passed, N failed, N skipped" and the suite's wall
# time, and exits 1 if anything failed.
#
# A program that exits non-zero without reporting a FAIL of its own (a
# crash, an abort, `set -e`), or a script that stops before its END line,
# counts as one failure more: a PASS printed before the crash does not hide
# it.  tests/t_harness.sh checks this on a script made to crash.
#
#   TESTS="unit t_cli" sh tests/run.sh    run a part: names of programs
#                                         (unit, kernels, gpu_check), of
#                                         scripts (t_cli), or script paths
SHARED=${SHARED:-../shared}
export SHARED
T=$(mktemp -d "${TMPDIR:-/tmp}/stylefs-test.XXXXXX")
export T
# the user's own styles folder stays out of the tests (style.h: the search path)
XDG_DATA_HOME=$T/xdg-data
export XDG_DATA_HOME
LOG=$T/results
: >"$LOG"
start=$(date +%s)

# run NAME SCRIPT? CMD...: run CMD, keep its report, check how it ended
run() {
    name=$1 want_end=$2
    shift 2
    out=$T/out.$name
    { "$@" 2>>"$T/stderr.log"; echo $? >"$T/rc.$name"; } | tee "$out"
    cat "$out" >>"$LOG"
    rc=$(cat "$T/rc.$name")
    if [ "$rc" != 0 ] && ! grep -q '^FAIL' "$out"; then
        echo "FAIL $name: exited with status $rc without reporting a failure" | tee -a "$LOG"
    elif [ -n "$want_end" ] && [ "$(tail -n 1 "$out")" != "END $want_end" ]; then
        echo "FAIL $name: stopped before its end (no 'END $want_end' line; exit status $rc)" | tee -a "$LOG"
    fi
}

# run_one NAME: one program or script of the suite
run_one() {
    mkdir -p "$T/$(basename "$1" .sh)"
    case $1 in
    unit) run unit "" build/tests/unit "$SHARED/models" "$T/unit" ;;
    kernels) run kernels "" build/tests/kernels ;;
    gpu_check) [ -x build/tests/gpu_check ] && run gpu_check "" build/tests/gpu_check ;;
    */*) run "$(basename "$1" .sh)" "$(basename "$1")" sh "$1" "$T/$(basename "$1" .sh)" ;;
    *)
        if [ -f "tests/$1.sh" ]; then run "$1" "$1.sh" sh "tests/$1.sh" "$T/$1"
        else echo "FAIL $1: no such test (programs: unit kernels gpu_check; scripts: tests/t_*.sh)" | tee -a "$LOG"; fi ;;
    esac
}

if [ ! -d "$SHARED/models" ]; then
    echo "FAIL setup: $SHARED/models not found (set SHARED=...)" | tee -a "$LOG"
else
    # test programs outside the binary's folder find the CUDA module here
    [ -f stylefs-cuda.so ] && STYLEFS_CUDA_MODULE=$PWD/stylefs-cuda.so && export STYLEFS_CUDA_MODULE
    if [ -n "${TESTS:-}" ]; then
        for t in $TESTS; do run_one "$t"; done
    else
        for t in unit kernels gpu_check; do run_one $t; done
        for t in tests/t_*.sh; do run_one "$(basename "$t" .sh)"; done
    fi
fi

p=$(grep -c '^PASS' "$LOG")
f=$(grep -c '^FAIL' "$LOG")
s=$(grep -c '^SKIP' "$LOG")
if [ "$f" -gt 0 ]; then
    echo "--- stderr of the failing run (last 40 lines) ---"
    tail -n 40 "$T/stderr.log"
fi
echo "suite wall time: $(($(date +%s) - start)) s on $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "$p passed, $f failed, $s skipped"
if [ "$f" -eq 0 ]; then rm -rf "$T"; else echo "(test files kept in $T)"; fi
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
