#!/bin/sh
# t_fifo.sh: FIFOs with image names never hang a tool: in the styles
# folder (stylefs styles, the mount), in the source (warm, the mount);
# every such file is opened without blocking and refused as not a regular
# file.  A pipe named on stylize's command line (bash's <(cmd)) is read.
# Each command runs under a timeout: a hang is a failure, not a stuck suite.
W=$1
. tests/lib.sh
ST=$W/styles SRC=$W/src
mkdir -p "$ST" "$SRC"
ln -s "$(cd "$STYLES/udnie" && pwd)" "$ST/udnie"
[ -d "$SHARED/arbitrary" ] && ln -s "$(cd "$SHARED/arbitrary" && pwd)" "$ST/arbitrary"
mkfifo "$ST/trap.jpg" "$SRC/pipe.jpg"
$MK 40 30 "$SRC/a.jpg" --seed 1

timeout -k 5 20 $SF styles --styles "$ST" >"$W/out" 2>"$W/err"
rc=$?
[ $rc = 0 ] && grep -q "^udnie" "$W/out" && grep -q "trap.jpg: not a regular file" "$W/err" &&
    pass "styles: a FIFO named like a painting is refused, not waited on" ||
    fail "styles: a FIFO in the styles folder" "exit $rc (124: hung); $(cat "$W/err")"

timeout -k 5 30 $SF warm --styles "$ST" --style udnie --cache "$W/cache" "$SRC" >"$W/out" 2>"$W/err"
rc=$?
[ $rc = 1 ] && grep -q "^failed: pipe.jpg (udnie): not a regular file" "$W/out" && grep -q "^1 computed" "$W/out" &&
    pass "warm: a FIFO in the source fails as not a regular file; the rest is computed" ||
    fail "warm: a FIFO in the source" "exit $rc (124: hung); $(cat "$W/out" "$W/err")"

if command -v bash >/dev/null; then
    timeout -k 5 30 bash -c "$SF stylize --styles '$ST' --no-cache udnie <(cat '$SRC/a.jpg') '$W/p.png'" 2>"$W/err" &&
        $SF stylize --styles "$ST" --no-cache udnie "$SRC/a.jpg" "$W/f.png" 2>/dev/null && cmp -s "$W/p.png" "$W/f.png" &&
        pass "stylize reads a pipe named on its command line (<(cat a.jpg)): the file's bytes" ||
        fail "stylize <(cat a.jpg)" "$(cat "$W/err")"
fi

if fuse_usable; then
    MNT=$W/mnt CACHE=$W/mcache LOG=$W/daemon.log STYLES=$ST
    mkdir -p "$MNT"
    if mount_it; then
        pass "mount: comes up with a FIFO in the styles folder"
        [ "$(ls "$MNT/styled" | tr '\n' ' ')" = "udnie " ] && [ "$(ls "$MNT/styled/udnie" | tr '\n' ' ')" = "a.jpg " ] &&
            pass "mount: neither FIFO is listed" || fail "mount: FIFOs not listed" "$(ls -R "$MNT/styled")"
        ! timeout -k 2 10 cat "$MNT/styled/udnie/pipe.jpg" >/dev/null 2>&1 && timeout -k 2 30 cat "$MNT/styled/udnie/a.jpg" >"$W/m" &&
            [ -s "$W/m" ] && pass "mount: a FIFO in the source is no file; its neighbour reads" ||
            fail "mount: a FIFO in the source" "$(tail -2 "$LOG")"
        unmount_it || fail "unmount" "the daemon did not exit"
    else
        fail "mount: comes up with a FIFO in the styles folder" "$(tail -2 "$LOG")"
        kill -9 $PID 2>/dev/null
        fusermount3 -u "$MNT" 2>/dev/null
    fi
fi
finish
