#!/bin/sh
# t_styles.sh: styles a user owns (issue 25): the search path (user
# folder, named folders, shadowing), a folder of paintings alone, the
# painting networks missing, kinds and origins in `stylefs styles`, and
# variants of every style (NAME@P, +colors, both) through stylize, warm
# and the mount, with their own keys; malformed suffixes.
W=$1
. tests/lib.sh
A=$SHARED/arbitrary
mkdir -p "$W/xdg/stylefs/styles" "$W/paint" "$W/mine" "$W/noarb"
$MK 96 64 "$W/photo.jpg" --seed 500
$MK 128 128 "$W/klee.jpg" --seed 501
$MK 128 128 "$W/miro.png" --seed 502

# a folder of paintings alone (refused before: paintings were loaded only
# after a network folder)
cp "$W/klee.jpg" "$W/paint/klee.jpg"
ln -s "$(cd "$A" && pwd)" "$W/paint/arbitrary"
$SF styles --styles "$W/paint" >"$W/out" 2>"$W/err"
[ "$(cat "$W/out")" = "klee	painting $W/paint/klee.jpg" ] &&
    pass "styles: a folder holding only a painting is a styles folder" ||
    fail "styles: a folder of paintings alone" "$(cat "$W/out" "$W/err")"

# newlines in names: `styles` prints one line per style and the log one
# line per message, the names escaped as `ls -b` does
mkdir -p "$W/nl"
ln -s "$(cd "$A" && pwd)" "$W/nl/arbitrary"
cp "$W/klee.jpg" "$W/nl/kl
ee.jpg"
echo "not an image" >"$W/nl/bad
name.jpg"
$SF styles --styles "$W/nl" >"$W/out" 2>"$W/err"
[ "$(wc -l <"$W/out")" = 1 ] && [ "$(cat "$W/out")" = "kl\\nee	painting $W/nl/kl\\nee.jpg" ] &&
    [ "$(grep -c 'bad\\nname' "$W/err")" = 1 ] && ! grep -q '^name' "$W/err" &&
    pass "styles: names with newlines are escaped as ls -b does, one line each, in the list and the log" ||
    fail "styles: names with newlines" "$(cat -A "$W/out" "$W/err")"

# no networks anywhere on the path: one line naming the folders and the fix
cp "$W/klee.jpg" "$W/noarb/klee.jpg"
expect_status "styles: paintings without the networks: no style (exit 1)" 1 $SF styles --styles "$W/noarb"
grep -q "looked in $W/noarb/arbitrary" "$W/err" && grep -q "make models" "$W/err" &&
    [ "$(grep -c "needs the arbitrary-style networks" "$W/err")" = 1 ] &&
    pass "styles: a painting without the networks: one line naming the folders looked in and the fix" ||
    fail "styles: a painting without the networks" "$(cat "$W/err")"

# the user's folder ($XDG_DATA_HOME) with a network, a named folder after
# it: a later folder's style shadows an earlier one's, with one line
ln -s "$(cd "$STYLES/wave" && pwd)" "$W/xdg/stylefs/styles/wave"
ln -s "$(cd "$STYLES/udnie" && pwd)" "$W/xdg/stylefs/styles/udnie"
cp "$W/miro.png" "$W/mine/wave.png"
ln -s "$(cd "$A" && pwd)" "$W/mine/arbitrary"
XDG_DATA_HOME=$W/xdg $SF styles --styles "$W/paint:$W/mine" >"$W/out" 2>"$W/err"
[ "$(cut -f1 "$W/out" | tr '\n' ' ')" = "klee udnie wave " ] &&
    grep -q "^udnie	network $W/xdg/stylefs/styles/udnie$" "$W/out" && grep -q "^wave	painting $W/mine/wave.png$" "$W/out" &&
    grep -q "style wave: $W/mine/wave.png shadows $W/xdg/stylefs/styles/wave" "$W/err" &&
    pass "styles: the user's folder, then --styles DIR:DIR; a later folder shadows an earlier one's style, with one line" ||
    fail "styles: the search path" "$(cat "$W/out" "$W/err")"
XDG_DATA_HOME=$W/xdg $SF styles -v >"$W/out" 2>"$W/err"
grep -q "searching $W/xdg/stylefs/styles" "$W/err" && [ "$(cut -f1 "$W/out" | tr '\n' ' ')" = "udnie wave " ] &&
    pass "styles -v: the user's folder alone by default, and the folders searched said" ||
    fail "styles -v" "$(cat "$W/out" "$W/err")"
expect_status "styles: a folder named with --styles must exist (exit 1)" 1 $SF styles --styles "$W/nope"
expect_err "styles: the missing folder is named" "$W/nope"

# the small things a new user tripped on
$SF --help 2>&1 | grep -q -- "--help-mount" && $SF --help-mount >"$W/out" 2>&1 && grep -q "styles=DIR" "$W/out" &&
    grep -q "FUSE options" "$W/out" && pass "--help points to --help-mount, which prints the mount's options" ||
    fail "--help-mount" "$(head -3 "$W/out")"
TOP=$(pwd); (mkdir -p "$W/undemo" && cd "$W/undemo" && make -s -f "$TOP/Makefile" undemo) >"$W/out" 2>&1 &&
    grep -q "nothing mounted on ./mnt" "$W/out" && pass "make undemo with nothing mounted says so" ||
    fail "make undemo with nothing mounted" "$(cat "$W/out")"

# make models: the eight default styles (matilde_perez is left out), the
# padded ones marked in their manifests, the painting networks checked
# against their pinned SHA-256 (a copy that differs is refused and removed)
make -s models MODELS_DIR="$W/models" SHARED="$SHARED" >"$W/make.out" 2>&1
[ "$(ls "$W/models" | tr '\n' ' ')" = "arbitrary la_muse mathura matta rain_princess scream udnie wave wreck " ] &&
    grep -q '"stylefs": {' "$W/models/la_muse/manifest.json" && ! grep -q '"stylefs"' "$W/models/wave/manifest.json" &&
    [ -f "$W/models/arbitrary/transfer_fp16.tflite" ] &&
    pass "make models: eight styles and the painting networks, la_muse's manifest with its padding" ||
    fail "make models" "$(ls "$W/models"; cat "$W/make.out")"
mkdir -p "$W/tampered/arbitrary"
cp "$SHARED/arbitrary/"*.tflite "$W/tampered/arbitrary/"
printf 'x' >>"$W/tampered/arbitrary/predict_int8.tflite"
make -s models MODELS_DIR="$W/models2" SHARED="$W/tampered" STYLE_NAMES= >"$W/make.out" 2>&1; rc=$?
[ $rc != 0 ] && grep -q "predict_int8.tflite: its SHA-256 is not the pinned" "$W/make.out" &&
    [ ! -f "$W/models2/arbitrary/predict_int8.tflite" ] &&
    pass "make models: a painting network whose SHA-256 is not the pinned one is refused and removed" ||
    fail "make models: the SHA-256 check" "exit $rc; $(cat "$W/make.out")"

# la_muse with its padding against the ONNX Runtime oracle run with the
# same padding (tests/golden/make_golden.sh); without it, the edge frame
for sz in 64x64 37x29; do
    if $SF stylize --styles "$W/models" --no-cache --max-side 0 la_muse tests/golden/in_$sz.ppm "$W/lm.png" 2>"$W/err" &&
        r=$($CMP tests/golden/la_muse_pad48_$sz.ppm "$W/lm.png" --within1 0.999 --psnr 45); then
        pass "oracle: la_muse with 48 pixels of mirror padding at $sz matches ONNX Runtime with the same ($r)"
    else
        fail "oracle: la_muse padded at $sz" "$r $(cat "$W/err")"
    fi
done
$SF stylize --styles "$STYLES" --no-cache --max-side 0 la_muse tests/golden/in_64x64.ppm "$W/lm0.png" 2>/dev/null
! $CMP tests/golden/la_muse_pad48_64x64.ppm "$W/lm0.png" --within1 0.999 --psnr 45 >/dev/null 2>&1 &&
    pass "oracle: la_muse without the padding differs from the padded oracle (the setting is applied)" ||
    fail "oracle: la_muse's padding applied" "the same without it"

# variants of a network: stylize
for v in wave@50 wave+colors wave@50+colors wave@0; do
    $SF stylize --styles "$STYLES" --no-cache "$v" "$W/photo.jpg" "$W/$v.png" 2>"$W/err" ||
        fail "stylize $v" "$(cat "$W/err")"
done
$SF stylize --styles "$STYLES" --no-cache wave "$W/photo.jpg" "$W/wave.png" 2>/dev/null
$SF stylize --styles "$STYLES" --no-cache wave@100 "$W/photo.jpg" "$W/wave@100.png" 2>/dev/null
cmp -s "$W/wave.png" "$W/wave@100.png" && ! cmp -s "$W/wave.png" "$W/wave@50.png" &&
    ! cmp -s "$W/wave@50.png" "$W/wave@50+colors.png" && ! cmp -s "$W/wave.png" "$W/wave+colors.png" &&
    pass "stylize: a network's @50, +colors and @50+colors differ from it and from each other; @100 is the style" ||
    fail "stylize: network variants" "some equal"
$SF stylize --no-cache --styles "$STYLES" wave@0 "$W/photo.jpg" "$W/w0.png" 2>/dev/null
$CMP "$W/w0.png" "$W/photo.jpg" >"$W/cmp" 2>&1; psnr=$(sed -n 's/.*psnr=\([0-9.]*\).*/\1/p' "$W/cmp")
awk "BEGIN{exit !(${psnr:-0} >= 35)}" && pass "stylize: wave@0 gives back the photo (PSNR $psnr dB)" ||
    fail "stylize: wave@0 is the photo" "$(cat "$W/cmp")"
for bad in wave@101 wave@050 wave+color wave+colors@50 wave@ @50 wave+colors+colors; do
    expect_status "stylize $bad: no style (exit 1)" 1 $SF stylize --styles "$STYLES" --no-cache "$bad" "$W/photo.jpg" "$W/bad.png"
done
# a painting's colours
$SF stylize --style-image "$W/klee.jpg" --arbitrary "$A" --no-cache --colors "$W/photo.jpg" "$W/kc.png" 2>/dev/null
$SF stylize --style-image "$W/klee.jpg" --arbitrary "$A" --no-cache "$W/photo.jpg" "$W/k.png" 2>/dev/null
[ -s "$W/kc.png" ] && ! cmp -s "$W/kc.png" "$W/k.png" && pass "stylize: --style-image with --colors differs from without" ||
    fail "stylize: a painting's +colors" "same or missing"

# warm fills the keys of variants; stylize finds them
$SF stylize --styles "$STYLES" --no-cache wave@50+colors "$W/photo.jpg" "$W/wave@50+colors.jpg" 2>/dev/null
mkdir -p "$W/wsrc"
cp "$W/photo.jpg" "$W/wsrc/"
$SF warm --styles "$STYLES" --style wave@50+colors,udnie@25 --cache "$W/wcache" "$W/wsrc" >"$W/warm.out" 2>"$W/warm.err"
$SF stylize --styles "$STYLES" --cache "$W/wcache" -v wave@50+colors "$W/photo.jpg" "$W/wc.jpg" 2>"$W/err"
grep -q "^2 computed.*(1 file x 2 styles" "$W/warm.out" && grep -q "cache hit" "$W/err" && cmp -s "$W/wc.jpg" "$W/wave@50+colors.jpg" &&
    pass "warm --style wave@50+colors,udnie@25: stylize then hits the same key, the same bytes" ||
    fail "warm with variants" "$(cat "$W/warm.out" "$W/warm.err" "$W/err")"

if fuse_usable; then
    SRC=$W/src MNT=$W/mnt CACHE=$W/mcache LOG=$W/daemon.log STYLES=$W/paint:$STYLES
    mkdir -p "$SRC" "$MNT"
    cp "$W/photo.jpg" "$SRC/photo.jpg"
    if mount_it; then
        ls "$MNT/styled" >"$W/ls"
        grep -qx klee "$W/ls" && grep -qx wave "$W/ls" && ! grep -q "[@+]" "$W/ls" &&
            pass "mount: styles from two folders listed, no variant folders" || fail "mount: styled/ listing" "$(cat "$W/ls")"
        for v in wave@50 wave+colors wave@50+colors; do
            $SF stylize --styles "$STYLES" --no-cache "$v" "$W/photo.jpg" "$W/$v.jpg" 2>/dev/null
            cmp -s "$MNT/styled/$v/photo.jpg" "$W/$v.jpg" && pass "mount: styled/$v/ equals stylize $v" ||
                fail "mount: styled/$v/ equals stylize" "differs"
        done
        $SF stylize --style-image "$W/klee.jpg" --arbitrary "$A" --no-cache --colors "$W/photo.jpg" "$W/kc.jpg" 2>/dev/null
        cmp -s "$MNT/styled/klee+colors/photo.jpg" "$W/kc.jpg" &&
            pass "mount: a painting's +colors equals stylize --style-image --colors" ||
            fail "mount: klee+colors" "differs"
        for bad in wave@101 wave+colours wave+colors@50; do
            [ ! -e "$MNT/styled/$bad" ] && pass "mount: $bad is no folder (ENOENT)" || fail "mount: $bad is ENOENT" "it exists"
        done
        grep -q "/styled/wave+colors@50: no such folder: .*write the strength before +colors" "$LOG" &&
            grep -q "/styled/wave+colours: no such folder: .*the only option after '+' is +colors" "$LOG" &&
            pass "mount: a malformed suffix gets one log line saying why" || fail "mount: a malformed suffix logged" "$(tail -3 "$LOG")"
        $SF --styles "$STYLES" "$SRC" "$MNT" 2>"$W/err"; rc=$?
        [ $rc = 1 ] && grep -q "mountpoint $MNT is already mounted: $SRC (fuse.stylefs); unmount it first" "$W/err" &&
            pass "mount: a mountpoint already mounted is said to be, naming what is mounted there" ||
            fail "mount: already mounted" "exit $rc; $(cat "$W/err")"
        ! grep -q "Ignoring invalid" "$LOG" && pass "mount -f: libfuse prints no 'Ignoring invalid max threads'" ||
            fail "mount -f: no libfuse warning" "$(grep "Ignoring" "$LOG")"
        # errors a user can see: /.errors and log=FILE (this mount logs to stderr)
        [ -f "$MNT/.errors" ] && [ ! -s "$MNT/.errors" ] && pass "mount: /.errors exists, empty before any failure" ||
            fail "mount: /.errors empty at first" "$(cat "$MNT/.errors" 2>&1)"
        unmount_it || fail "unmount" "the daemon did not exit"
        printf 'not a JPEG at all' >"$SRC/broken.jpg"
        ./stylefs -o styles="$STYLES",cache="$CACHE",log="$W/stylefs.log" "$SRC" "$MNT" 2>"$W/err"
        ! cat "$MNT/styled/wave/broken.jpg" >/dev/null 2>&1 && ! cat "$MNT/styled/wave@50/broken.jpg" >/dev/null 2>&1 &&
            ! cat "$MNT/styled/wave/broken.jpg" >/dev/null 2>&1
        cp "$MNT/.errors" "$W/errors"
        n=$(wc -l <"$W/errors")
        line=$(head -1 "$W/errors")
        if [ "$n" = 3 ] && echo "$line" | grep -q "^20[0-9-]*T[0-9:]*Z	/styled/wave/broken.jpg	wave	.*broken.jpg: " &&
            grep -q "	/styled/wave@50/broken.jpg	wave@50	" "$W/errors" &&
            tail -1 "$W/errors" | grep -q "failed at an earlier read"; then
            pass "mount: /.errors lists each failed read: time, path, style and reason ($line)"
        else
            fail "mount: /.errors" "$n lines: $(cat "$W/errors")"
        fi
        grep -q "^20[0-9-]*T[0-9:.]*Z stylefs\[[0-9]*\] error: .*broken.jpg" "$W/stylefs.log" &&
            grep -q "mounted\|error" "$W/stylefs.log" &&
            pass "mount: log=FILE appends one line per event, with time, pid and level" ||
            fail "mount: log=FILE" "$(cat "$W/stylefs.log" "$W/err")"
        fusermount3 -u "$MNT"
        rm -f "$SRC/broken.jpg"
        # fstab's options, and --styles DIR as the other commands take it
        mkdir -p "$W/mnt2"
        $SF --styles "$W/paint" -o defaults,noauto,x-systemd.automount,x-systemd.idle-timeout=60 "$SRC" "$W/mnt2" \
            2>"$W/err" && [ "$(ls "$W/mnt2/styled")" = "klee" ] &&
            pass "mount: fstab's defaults and x-systemd.* options are taken, and --styles DIR (two arguments)" ||
            fail "mount: fstab options and --styles DIR" "$(cat "$W/err")"
        fusermount3 -u "$W/mnt2" 2>/dev/null
    else
        fail "mount with a folder of paintings" "$(tail -3 "$LOG")"
    fi
else
    skip "mount: variants" "no FUSE here"
fi
echo "END t_styles.sh"
