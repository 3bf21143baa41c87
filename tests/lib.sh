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

# mount_it [OPTS...]: mounts $SRC on $MNT in the foreground (log: $LOG,
# pid: $PID) with $STYLES and $CACHE; unmount_it waits for the daemon.
mount_it() {
    ${WRAP:-} ./stylefs -f -o styles="$STYLES",cache="$CACHE" "$@" "$SRC" "$MNT" 2>>"$LOG" &
    PID=$!
    for i in $(seq 50); do
        [ -d "$MNT/styled" ] && return 0
        kill -0 $PID 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
unmount_it() {
    fusermount3 -u "$MNT" 2>/dev/null
    for i in $(seq 100); do kill -0 $PID 2>/dev/null || return 0; sleep 0.1; done
    return 1
}
counter() { sed -n "s/^$1 //p" "$MNT/.stats"; }
# wait_log TEXT [N]: wait (up to 10 s) until $LOG holds TEXT at least N
# times (1); an event-driven change (the styles watcher) is then done
wait_log() {
    for i in $(seq 100); do
        [ "$(grep -cF -- "$1" "$LOG")" -ge "${2:-1}" ] && return 0
        sleep 0.1
    done
    return 1
}
# fuse_usable: whether FUSE mounts can work here at all
fuse_usable() { [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; }
# rss_kb PID FIELD: VmRSS or VmHWM of a process, in kB
rss_kb() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" /proc/$1/status; }
# ms: a clock in milliseconds, for figures (never asserted)
ms() { echo $(($(date +%s%N) / 1000000)); }
# finish: the script's last line (tests/run.sh counts a script that stops
# before it as failed); also the way out of a script that skips the rest
finish() { echo "END $(basename "$0")"; exit 0; }
