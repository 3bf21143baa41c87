#!/bin/sh
# t_perms.sh: who can read what.  A mount with allow_other serves each
# styled file and directory with its source's owner and read bits (no
# write bit), and the kernel checks them (default_permissions): as user
# nobody (setpriv --reuid=65534), a world-readable photo reads, a 0600
# photo and a 0700 folder do not.  The cache folder is 0700 and its files
# 0600.  Needs root (to mount with allow_other and to become nobody).
W=$1
. tests/lib.sh
if ! fuse_usable; then
    skip "permissions" "FUSE unusable here"
    finish
fi
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
    skip "permissions" "needs root and setpriv (util-linux)"
    finish
fi
# a folder nobody can reach (the suite's own is 0700)
P=$(mktemp -d /tmp/stylefs-perms.XXXXXX)
chmod 755 "$P"
SRC=$P/src MNT=$P/mnt CACHE=$P/cache/sub LOG=$W/daemon.log
mkdir -p "$SRC/private" "$MNT"
$MK 40 30 "$SRC/public.jpg" --seed 1
$MK 40 30 "$SRC/secret.jpg" --seed 2
$MK 40 30 "$SRC/private/inside.jpg" --seed 3
$MK 40 30 "$SRC/mine.jpg" --seed 4
chown 65534:65534 "$SRC/mine.jpg"
chmod 600 "$SRC/mine.jpg"
chmod 644 "$SRC/public.jpg" "$SRC/private/inside.jpg"
chmod 600 "$SRC/secret.jpg"
chmod 700 "$SRC/private"
chmod 755 "$SRC"
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
${SF} -f -o styles="$STYLES",cache="$CACHE",allow_other "$SRC" "$MNT" 2>>"$LOG" &
PID=$!
for i in $(seq 50); do [ -d "$MNT/styled" ] && break; sleep 0.1; done
if [ ! -d "$MNT/styled" ]; then
    fail "permissions: mount with allow_other" "$(tail -2 "$LOG")"
else
    $NOBODY cat "$MNT/styled/udnie/public.jpg" >"$W/pub" 2>"$W/err" && [ -s "$W/pub" ] &&
        pass "as nobody: a world-readable photo's styled copy reads" ||
        fail "as nobody: a world-readable photo reads" "$(cat "$W/err")"
    ! $NOBODY cat "$MNT/styled/udnie/secret.jpg" >/dev/null 2>"$W/err" && grep -q "Permission denied" "$W/err" &&
        pass "as nobody: a 0600 photo's styled copy is refused (EACCES)" ||
        fail "as nobody: a 0600 photo is refused" "it was read: $(cat "$W/err")"
    ! $NOBODY ls "$MNT/styled/udnie/private" >/dev/null 2>"$W/err" && grep -q "Permission denied" "$W/err" &&
        pass "as nobody: a 0700 folder's styled copy cannot be listed" ||
        fail "as nobody: a 0700 folder cannot be listed" "$(cat "$W/err")"
    ! $NOBODY cat "$MNT/styled/udnie/private/inside.jpg" >/dev/null 2>&1 &&
        pass "as nobody: a photo inside a 0700 folder is refused" ||
        fail "as nobody: a photo inside a 0700 folder is refused" "it was read"
    m=$(stat -c '%a %u' "$MNT/styled/udnie/secret.jpg" "$MNT/styled/udnie/public.jpg" "$MNT/styled/udnie/private" | tr '\n' ' ')
    [ "$m" = "400 0 444 0 500 0 " ] && pass "modes served: the source's read bits, no write bit (400, 444, 500)" ||
        fail "modes served are the source's read bits" "$m"
    $NOBODY cat "$MNT/styled/udnie/mine.jpg" >"$W/mine" 2>"$W/err" && [ -s "$W/mine" ] &&
        pass "as nobody: its own 0600 photo's styled copy reads (the owner is the source's)" ||
        fail "as nobody: its own 0600 photo reads" "$(cat "$W/err")"
    fusermount3 -u "$MNT" 2>/dev/null
    for i in $(seq 100); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
    m=$(stat -c '%a' "$P/cache" "$CACHE" "$CACHE/data.mdb" "$CACHE/lock.mdb" "$CACHE/stylefs.lock" | tr '\n' ' ')
    [ "$m" = "700 700 600 600 600 " ] &&
        pass "the cache folders it makes are 0700 and its files 0600 (it holds copies of private photos)" ||
        fail "cache folder 0700, files 0600" "$m"
fi
kill -9 $PID 2>/dev/null
rm -rf "$P"
finish
