#!/bin/sh
# t_examples.sh: the examples/ scripts, run for real: the gallery picture,
# serving styled/ over HTTP and fetching with curl, the cp -r one-liner,
# and the systemd unit (where systemd-analyze exists).
W=$1
. tests/lib.sh
ABS_SF=$PWD/stylefs
mkdir -p "$W/src/sub"
$MK 96 64 "$W/photo.jpg" --seed 4
$MK 64 48 "$W/src/a.jpg" --seed 5
$MK 40 30 "$W/src/sub/b.png" --seed 6

# gallery: the original and every style, 5 per row, 256-pixel tiles each
# with a 20-pixel label band under it; then a row of the first network at
# 25, 50, 75 and +colors
n=$(ls "$STYLES" | grep -vc README)
cols=$(( n + 1 < 5 ? n + 1 : 5 )) rows=$(( (n + 1 + 4) / 5 + 1 ))
want="$((cols * 264 + 8))x$((rows * 284 + 8)) PNG"
if SF=./stylefs GALLERY=build/examples/gallery sh examples/gallery.sh "$W/photo.jpg" "$W/g.png" "$STYLES" \
        >"$W/out" 2>&1 && info=$($CMP --info "$W/g.png") && [ "${info%% alpha*}" = "$want" ]; then
    pass "examples: gallery.sh writes one contact sheet of every style ($info)"
else
    fail "examples: gallery.sh writes one contact sheet of every style" "want $want, got ${info:-none}: $(cat "$W/out")"
fi

MOUNT_OK=
[ -c /dev/fuse ] && command -v fusermount3 >/dev/null && MOUNT_OK=1
export STYLEFS_OPTS="-o styles=$(cd "$STYLES" && pwd),cache=$W/cache"

# serving over HTTP with a stock web server, fetching with curl
if [ -z "$MOUNT_OK" ]; then
    skip "examples: serve-http.sh" "/dev/fuse unusable here"
elif ! command -v curl >/dev/null || ! command -v python3 >/dev/null; then
    skip "examples: serve-http.sh" "curl or python3 not installed"
else
    port=$((20000 + $$ % 20000))
    $SF stylize --styles "$STYLES" --no-cache wave "$W/src/a.jpg" "$W/want.jpg" 2>/dev/null
    if (cd "$W" && SF=$ABS_SF sh "$OLDPWD/examples/serve-http.sh" "$W/src" $port a.jpg wave) >"$W/out" 2>&1 &&
        cmp -s "$W/styled-a.jpg" "$W/want.jpg"; then
        pass "examples: serve-http.sh serves styled/ over HTTP; curl gets the styled bytes"
    else
        fail "examples: serve-http.sh" "$(cat "$W/out")"
    fi
fi

# the cp -r one-liner
if [ -z "$MOUNT_OK" ]; then
    skip "examples: style-folder.sh" "/dev/fuse unusable here"
else
    mkdir -p "$W/dest"
    $SF stylize --styles "$STYLES" --no-cache udnie "$W/src/sub/b.png" "$W/want.png" 2>/dev/null
    if SF=./stylefs sh examples/style-folder.sh "$W/src" udnie "$W/dest" >"$W/out" 2>&1 &&
        [ -f "$W/dest/a.jpg" ] && cmp -s "$W/dest/sub/b.png" "$W/want.png"; then
        pass "examples: style-folder.sh copies a styled folder with cp -r"
    else
        fail "examples: style-folder.sh" "$(cat "$W/out"; ls -R "$W/dest")"
    fi
fi

# the systemd units
for u in stylefs@.service stylefs-worker.service; do
    if command -v systemd-analyze >/dev/null; then
        cp examples/$u "$W/"
        if systemd-analyze verify "$W/$u" >"$W/out" 2>&1 ||
            ! grep -qiE 'unknown|invalid|failed to parse' "$W/out"; then
            pass "examples: systemd unit $u parses"
        else
            fail "examples: systemd unit $u parses" "$(cat "$W/out")"
        fi
    else
        skip "examples: systemd unit $u parses" "systemd-analyze not installed"
    fi
done
finish
