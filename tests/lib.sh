# lib.sh: helpers sourced by the tests/t_*.sh scripts.
# Each test reports one line: PASS name | FAIL name: why | SKIP name: why.
SF=${SF:-./stylefs}
MK=build/tests/mkimg
CMP=build/tests/imgcmp
STYLES=$SHARED/models

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

# expect_status NAME WANT CMD...: runs CMD, checks its exit status.
expect_status() {
    name=$1 want=$2
    shift 2
    "$@" >"$W/out" 2>"$W/err"
    got=$?
    if [ "$got" -eq "$want" ]; then pass "$name"
    else fail "$name" "exit $got, wanted $want; stderr: $(head -c 300 "$W/err")"; fi
}

# expect_err NAME PATTERN: the last command's stderr matches PATTERN.
expect_err() {
    if grep -q -- "$2" "$W/err"; then pass "$1"
    else fail "$1" "stderr lacks '$2': $(head -c 300 "$W/err")"; fi
}
