#!/bin/sh
# t_hostile.sh: bad, hostile and unusual inputs through `stylefs stylize`
# and through the mount; the source tree's odd corners (names, links,
# permissions, files changing under a reader, large and deep trees); and
# mounting mistakes.  Figures (time per bad input, listing times) are
# printed, never asserted; memory and answers are asserted.
W=$1
. tests/lib.sh
I=$W/in SRC=$W/src MNT=$W/mnt CACHE=$W/cache LOG=$W/daemon.log
mkdir -p "$I" "$SRC" "$MNT"

# --- the inputs ----------------------------------------------------------------
: >"$I/empty.jpg"
head -c 5000 /dev/urandom >"$I/random.png"
echo "hello, not a picture" >"$I/text.jpg"
$MK 640 480 "$I/full.jpg"; $MK 640 480 "$I/full.png"; $MK 300 200 "$I/full.bmp"
$MK 300 200 "$I/full.tga"; $MK 300 200 "$I/full.ppm"; $MK 300 200 "$I/full.gif"
cut_to() { s=$(wc -c <"$1"); head -c $((s * $2 / 100)) "$1" >"$3"; }
for p in 10 50 90; do
    cut_to "$I/full.jpg" $p "$I/cut$p.jpg"; cut_to "$I/full.png" $p "$I/cut$p.png"
done
s=$(wc -c <"$I/full.jpg"); head -c $((s - 2)) "$I/full.jpg" >"$I/cut-eoi.jpg"
s=$(wc -c <"$I/full.png"); head -c $((s - 12)) "$I/full.png" >"$I/cut-iend.png"
for x in bmp tga ppm gif; do cut_to "$I/full.$x" 50 "$I/cut50.$x"; done
$MK 20000 20000 "$I/bomb.png" --bomb           # 400 MP of zeros in ~390 KB
$MK 65535 65535 "$I/claim.png" --claim         # the header lies over 100 bytes
$MK 7000 7000 "$I/claim49mp.png" --claim       # under max_pixels, body missing
$MK 4000 3000 "$I/big.jpg"; cut_to "$I/big.jpg" 95 "$I/cut95-12mp.jpg"
BAD="empty.jpg random.png text.jpg cut10.jpg cut50.jpg cut90.jpg cut-eoi.jpg cut10.png cut50.png
cut90.png cut-iend.png cut50.bmp cut50.tga cut50.ppm cut50.gif bomb.png claim.png claim49mp.png cut95-12mp.jpg"

$MK 64 48 "$I/ref.png"; $MK 64 48 "$I/cmyk.jpg" --cmyk; $MK 64 48 "$I/palette.png" --palette
$MK 64 48 "$I/anim.gif"; $MK 64 48 "$I/d16.png" --depth16; $MK 64 48 "$I/gray.png" --gray
$MK 64 48 "$I/graya.png" --gray --alpha; $MK 64 48 "$I/rgba.png" --alpha; $MK 1 1 "$I/1x1.png"
$MK 1 300 "$I/1x300.png"; $MK 300 1 "$I/300x1.jpg"
for o in 1 2 3 4 5 6 7 8; do $MK 64 48 "$I/exif$o.jpg" --exif $o; done
# a 16-bit PGM with the same picture as an 8-bit one (each sample v as v*257)
$MK 64 48 "$I/gray8.pgm" --gray
{ printf 'P5\n64 48\n65535\n'; tail -c 3072 "$I/gray8.pgm" | od -An -v -tu1 |
  LC_ALL=C awk '{ for (i = 1; i <= NF; i++) printf "%c%c", $i, $i }'; } >"$I/gray16.pgm"
GOOD="gray8.pgm gray16.pgm cmyk.jpg palette.png anim.gif d16.png gray.png graya.png rgba.png 1x1.png 1x300.png 300x1.jpg
exif1.jpg exif2.jpg exif3.jpg exif4.jpg exif5.jpg exif6.jpg exif7.jpg exif8.jpg"

# the mount's name for a source: formats stylefs cannot write gain .png
out_name() { case $1 in *.gif|*.ppm|*.pgm|*.pnm|*.psd) echo "$1.png" ;; *) echo "$1" ;; esac; }

# --- through stylefs stylize ------------------------------------------------------
worst_ms=0 worst_kb=0
for f in $BAD; do
    t0=$(ms)
    /usr/bin/time -f %M -o "$W/rss" $SF stylize --styles "$STYLES" --no-cache udnie "$I/$f" "$W/bad.png" \
        >/dev/null 2>"$W/err"
    rc=$? dt=$(($(ms) - t0)) kb=$(tail -1 "$W/rss")
    [ $dt -gt $worst_ms ] && worst_ms=$dt
    [ "$kb" -gt $worst_kb ] && worst_kb=$kb
    if [ $rc = 1 ] && [ "$(wc -l <"$W/err")" = 1 ] && [ ! -e "$W/bad.png" ] && [ "$kb" -lt 102400 ]; then
        pass "stylize refuses $f: $(cut -d: -f3- "$W/err" | cut -c2-) (${dt} ms, ${kb} kB)"
    else
        fail "stylize refuses $f" "exit $rc, $(wc -l <"$W/err") lines, peak ${kb} kB: $(head -c 200 "$W/err")"
    fi
done
echo "figure: bad inputs through stylize: slowest ${worst_ms} ms, largest peak RSS ${worst_kb} kB"

for f in $GOOD; do
    o=$(out_name "$f"); o=$W/want-$o
    if $SF stylize --styles "$STYLES" --no-cache udnie "$I/$f" "$o" 2>"$W/err"; then
        pass "stylize reads $f ($($CMP --info "$o" | cut -d' ' -f1))"
    else
        fail "stylize reads $f" "$(cat "$W/err")"
    fi
done
# the right picture, not only a picture
r=$($CMP "$I/ref.png" "$I/cmyk.jpg" --psnr 30) && pass "CMYK JPEG decodes to the right colours ($r)" ||
    fail "CMYK JPEG decodes to the right colours" "$r"
cmp -s "$W/want-gray8.pgm.png" "$W/want-gray16.pgm.png" &&
    pass "16-bit PGM: the same image as its 8-bit twin (maxval scaled)" ||
    fail "16-bit PGM: the same image as its 8-bit twin" "outputs differ"
cmp -s "$W/want-palette.png" "$W/want-anim.gif.png" &&
    pass "animated GIF: the first frame is styled (same bytes as the same pixels in a PNG)" ||
    fail "animated GIF: the first frame is styled" "differs from the palette PNG of frame 1"
for o in 1 2 3 4 5 6 7 8; do
    name="EXIF orientation $o: styled as viewers show it"
    r=$($CMP "$I/ref.png" "$I/exif$o.jpg" --psnr 30) && $CMP --info "$W/want-exif$o.jpg" | grep -q '^64x48 ' &&
        pass "$name (styled 64x48 from a file stored $([ $o -ge 5 ] && echo 48x64 || echo 64x48); $r)" ||
        fail "$name" "$r; styled $($CMP --info "$W/want-exif$o.jpg")"
done

# --- through the mount --------------------------------------------------------------
if ! fuse_usable; then
    skip "hostile inputs through the mount" "/dev/fuse or fusermount3 unusable here"
    finish
fi
for f in $BAD $GOOD; do cp "$I/$f" "$SRC/"; done
mount_it || { fail "mount for hostile inputs" "$(tail -3 "$LOG")"; exit 0; }
hwm0=$(rss_kb $PID VmHWM) worst_ms=0
for f in $BAD; do
    n0=$(grep -c "$f" "$LOG")
    t0=$(ms)
    cat "$MNT/styled/udnie/$(out_name "$f")" >"$W/got" 2>"$W/err"
    rc=$? dt=$(($(ms) - t0))
    [ $dt -gt $worst_ms ] && worst_ms=$dt
    case $f in                  # over max_pixels: EFBIG; the rest: EIO
    bomb.png|claim.png) e=EFBIG msg="File too large" ;;
    *) e=EIO msg="Input/output error" ;;
    esac
    if [ $rc != 0 ] && grep -q "$msg" "$W/err" && [ ! -s "$W/got" ] &&
        [ $(($(grep -c "$f" "$LOG") - n0)) = 1 ]; then
        pass "mount: $f gives $e and one log line (${dt} ms)"
    else
        fail "mount: $f gives $e and one log line" "exit $rc, $(wc -c <"$W/got") bytes, $(cat "$W/err")"
    fi
done
hwm1=$(rss_kb $PID VmHWM)
[ -n "$hwm0" ] && [ -n "$hwm1" ] && [ $((hwm1 - hwm0)) -lt 102400 ] && pass "mount: all bad inputs together raised the daemon's peak RSS by $((hwm1 - hwm0)) kB" ||
    fail "mount: bad inputs stay under 100 MB" "peak RSS $hwm0 -> $hwm1 kB"
echo "figure: bad inputs through the mount: slowest ${worst_ms} ms, peak RSS +$((hwm1 - hwm0)) kB"
for f in $GOOD; do
    o=$(out_name "$f")
    cmp -s "$MNT/styled/udnie/$o" "$W/want-$o" && pass "mount: $o equals stylize" ||
        fail "mount: $o equals stylize" "$(cmp "$MNT/styled/udnie/$o" "$W/want-$o" 2>&1)"
done
kill -0 $PID && pass "mount: the daemon is alive after every input" || fail "mount: the daemon is alive" "gone"
unmount_it
rm -f "$SRC"/*

# --- names, links, permissions -----------------------------------------------------------
NL=$(printf 'new\nline.jpg')
mkdir -p "$SRC/album.jpg" "$SRC/sub" "$W/outside"
$MK 40 30 "$SRC/a.jpg" --seed 2
$MK 40 30 "$SRC/sp ace.jpg" --seed 3; $MK 40 30 "$SRC/ünï cødé 写真.png" --seed 4
$MK 40 30 "$SRC/$NL" --seed 5; $MK 40 30 "$SRC/album.jpg/inside.png" --seed 6
$MK 40 30 "$W/outside/secret.jpg" --seed 7
ln -s a.jpg "$SRC/link.jpg"; ln -s ../a.jpg "$SRC/sub/up.jpg"; ln -s "$SRC/a.jpg" "$SRC/abs-inside.jpg"
ln -s "$W/outside/secret.jpg" "$SRC/leaves.jpg"; ln -s ../outside "$W/src/outdir"
ln -s loop.jpg "$SRC/loop.jpg"; ln -s b2.jpg "$SRC/b1.jpg"; ln -s b1.jpg "$SRC/b2.jpg"
ln -s .. "$SRC/sub/back-up"; ln -s sub "$SRC/sub-link"
$MK 40 30 "$SRC/locked.jpg" --seed 8; chmod 000 "$SRC/locked.jpg"
mount_it || { fail "mount for the source tree" "$(tail -3 "$LOG")"; exit 0; }
U=$MNT/styled/udnie
for f in "sp ace.jpg" "ünï cødé 写真.png" "$NL" "album.jpg/inside.png"; do
    $SF stylize --styles "$STYLES" --no-cache udnie "$SRC/$f" "$W/want.${f##*.}" 2>/dev/null
    cmp -s "$U/$f" "$W/want.${f##*.}" && pass "names: '$(echo "$f" | tr '\n' '|')' reads right" ||
        fail "names: '$(echo "$f" | tr '\n' '|')' reads right" "$(ls "$U" | tr '\n' '|')"
done
[ -d "$U/album.jpg" ] && pass "names: a directory named album.jpg is a directory" || fail "names: album.jpg is a directory" "not a dir"
$SF stylize --styles "$STYLES" --no-cache udnie "$SRC/a.jpg" "$W/a.jpg" 2>/dev/null
for f in link.jpg sub/up.jpg abs-inside.jpg sub-link/up.jpg; do
    cmp -s "$U/$f" "$W/a.jpg" && pass "links: $f (inside SOURCE) is served" || fail "links: $f is served" "$(cat "$U/$f" 2>&1 | head -c 100)"
done
for f in loop.jpg b1.jpg sub/back-up; do
    timeout 10 cat "$U/$f" >/dev/null 2>"$W/err"
    grep -q "Too many levels of symbolic links" "$W/err" && pass "links: $f gives ELOOP" || fail "links: $f gives ELOOP" "$(cat "$W/err")"
done
n=$(timeout 20 find "$U" | wc -l)
[ "$n" -lt 40 ] && pass "links: find over the tree ends ($n entries; no endless descent through sub/back-up)" ||
    fail "links: find over the tree ends" "$n entries"
cat "$U/leaves.jpg" >/dev/null 2>&1 && pass "links: a private mount follows links out of SOURCE" ||
    fail "links: a private mount follows links out of SOURCE" "refused"
if [ "$(id -u)" = 0 ]; then
    # root reads anything: take away the capability that lets it, for this daemon only
    unmount_it
    WRAP="setpriv --bounding-set=-dac_override,-dac_read_search"
    mount_it
    WRAP=
fi
cat "$U/locked.jpg" >/dev/null 2>"$W/err"
grep -q "Permission denied" "$W/err" && pass "permissions: an unreadable source gives EACCES" ||
    fail "permissions: an unreadable source gives EACCES" "$(cat "$W/err")"
unmount_it
mount_it -o allow_other
ls "$U" >"$W/ls"
if ! grep -q leaves.jpg "$W/ls" && ! grep -q outdir "$W/ls" && ! cat "$U/leaves.jpg" >/dev/null 2>&1 &&
    ! cat "$U/outdir/secret.jpg" >/dev/null 2>&1 && cmp -s "$U/abs-inside.jpg" "$W/a.jpg" && cmp -s "$U/link.jpg" "$W/a.jpg"; then
    pass "links: with allow_other nothing outside SOURCE is listed or served; links inside still work"
else
    fail "links: with allow_other nothing outside SOURCE is served" "$(tr '\n' ' ' <"$W/ls")"
fi
unmount_it
chmod 644 "$SRC/locked.jpg"

# --- a source replaced, deleted or rewritten while it is read -------------------------------
$MK 512 512 "$W/old.jpg" --seed 11; $MK 512 512 "$W/new.jpg" --seed 12
$SF stylize --styles "$STYLES" --no-cache --max-side 0 udnie "$W/old.jpg" "$W/s-old.jpg" 2>/dev/null
$SF stylize --styles "$STYLES" --no-cache --max-side 0 udnie "$W/new.jpg" "$W/s-new.jpg" 2>/dev/null
rm -rf "$SRC"/* "$CACHE"; cp "$W/old.jpg" "$SRC/v.jpg"; cp "$W/old.jpg" "$SRC/gone.jpg"
if ! mount_it -o max_side=0; then
    fail "changes: mount for the changing-source tests" "$(tail -3 "$LOG")"
else
cat "$U/v.jpg" >"$W/r1" 2>/dev/null & r1=$!
cat "$U/gone.jpg" >"$W/r2" 2>/dev/null & r2=$!
sleep 0.2; cp "$W/new.jpg" "$W/src/v.tmp"; mv "$W/src/v.tmp" "$SRC/v.jpg"; rm "$SRC/gone.jpg"
wait $r1; wait $r2
ok=1 whole=0
for r in r1 r2; do
    if cmp -s "$W/$r" "$W/s-old.jpg"; then whole=$((whole + 1)); elif [ -s "$W/$r" ]; then ok=0; fi
done
# a positive control: at least one of the two got the whole old image
[ $ok = 1 ] && [ $whole -ge 1 ] &&
    pass "changes: a source replaced or deleted during its stylization gives the old image whole, or an error ($whole whole)" ||
    fail "changes: replaced or deleted during a stylization" "a reader got other bytes, or none got a whole image (whole=$whole)"
cmp -s "$U/v.jpg" "$W/s-new.jpg" && pass "changes: the replaced source reads as the new image afterwards" ||
    fail "changes: the replaced source reads as the new image" "other bytes"
# rewritten in place, again and again, under 12 readers: never a mixed image
(for i in $(seq 30); do cat "$W/new.jpg" >"$SRC/v.jpg"; cat "$W/old.jpg" >"$SRC/v.jpg"; done) & wr=$!
rs=""
for i in $(seq 12); do (sleep 0.0$i; cat "$U/v.jpg" >"$W/rw$i" 2>/dev/null) & rs="$rs $!"; done
wait $wr $rs
ok=0 bad=0 err=0
for i in $(seq 12); do
    if cmp -s "$W/rw$i" "$W/s-old.jpg" || cmp -s "$W/rw$i" "$W/s-new.jpg"; then ok=$((ok + 1))
    elif [ ! -s "$W/rw$i" ]; then err=$((err + 1))
    else bad=$((bad + 1)); fi
done
# a positive control: once the rewriting stops, a read gets the whole image
# (under the rewriting, a clean error for every reader would be right)
cat "$U/v.jpg" >"$W/rwlast" 2>/dev/null
[ $bad = 0 ] && cmp -s "$W/rwlast" "$W/s-old.jpg" &&
    pass "changes: a source rewritten in place under 12 readers: $ok whole images, $err clean errors, 0 mixed; whole once it stops" ||
    fail "changes: a source rewritten in place" "$bad readers got bytes that are neither image; after the rewriting: $(cmp "$W/rwlast" "$W/s-old.jpg" 2>&1 | head -c 100)"
fi
kill -0 $PID && pass "changes: the daemon is alive" || fail "changes: the daemon is alive" "gone"
unmount_it

# --- large and deep trees ---------------------------------------------------------------
rm -rf "$SRC"/*; mkdir -p "$SRC/many"
(cd "$SRC/many" && seq -f "img%05.0f.jpg" 10000 | xargs touch)
d=$SRC/deep
for i in $(seq 150); do d=$d/level-$i; done
mkdir -p "$d" && $MK 24 24 "$d/bottom.png"
mount_it || { fail "mount for large trees" "$(tail -3 "$LOG")"; finish; }
ls -f "$U/many" >/dev/null                      # first listing: the kernel's caches warm
t0=$(ms); a=$(ls -f "$SRC/many" | wc -l); t1=$(ms); b=$(ls -f "$U/many" | wc -l); t2=$(ms)
t3=$(ms); ls -l "$SRC/many" >/dev/null; t4=$(ms); ls -l "$U/many" >/dev/null; t5=$(ms)
dups=$(ls -f "$U/many" | sort | uniq -d | wc -l)
bad=$(ls -l "$U/many" | awk 'NR > 1 && $1 != "-r--r--r--"' | wc -l)
[ "$a" = "$b" ] && [ "$dups" = 0 ] && [ "$bad" = 0 ] &&
    pass "large: a 10,000-image directory lists whole ($((b - 2)) names, none twice, every entry -r--r--r--)" ||
    fail "large: a 10,000-image directory lists whole" "$a vs $b names, $dups twice, $bad with other modes"
echo "figure: listing 10,000 names: ls -f source $((t1 - t0)) ms, mount $((t2 - t1)) ms; ls -l source $((t4 - t3)) ms, mount $((t5 - t4)) ms"
dm=$U/deep${d#"$SRC/deep"}
$SF stylize --styles "$STYLES" --no-cache udnie "$d/bottom.png" "$W/bottom.png" 2>/dev/null
cmp -s "$dm/bottom.png" "$W/bottom.png" && pass "deep: an image 150 directories down (${#dm}-byte path) reads right" ||
    fail "deep: an image 150 directories down" "$(cat "$dm/bottom.png" 2>&1 | head -c 200)"
unmount_it

# --- mounting mistakes ----------------------------------------------------------------------
mistake() {   # NAME PATTERN ARGS...
    name=$1 pat=$2
    shift 2
    ./stylefs "$@" >"$W/out" 2>"$W/err"
    rc=$?
    eval "at=\${$#}"           # the mountpoint given: the last argument
    if [ $rc != 0 ] && grep -q -- "$pat" "$W/err" && ! grep -q " $at " /proc/mounts; then
        pass "mount refuses $name: $(head -1 "$W/err")"
    else
        fail "mount refuses $name" "exit $rc: $(head -c 300 "$W/err")"
    fi
}
# a library failure at start (the FUSE loop cannot be made) exits 1, said
mkdir -p "$W/mnt-fault"
ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 LD_PRELOAD=$PWD/build/tests/fault_inject.so \
    STYLEFS_FAULT=fuse_loop_cfg_create timeout 20 ./stylefs -f -o styles="$STYLES",cache="$W/cache-fault" \
    "$SRC" "$W/mnt-fault" >"$W/out" 2>"$W/err"
rc=$?
if [ $rc = 1 ] && grep -q "cannot start the FUSE loop" "$W/err" && ! grep -q " $W/mnt-fault " /proc/mounts; then
    pass "mount: a FUSE loop that cannot be made exits 1 and says so"
else
    fail "mount: a FUSE loop that cannot be made exits 1" "exit $rc: $(head -c 300 "$W/err")"
    fusermount3 -u "$W/mnt-fault" 2>/dev/null
fi
# a confined mount (allow_other, confine) on a kernel without openat2
# (STYLEFS_NO_OPENAT2=1 acts as one): refused, since O_NOFOLLOW alone would
# check only a path's last component
for opt in allow_other confine; do
    mkdir -p "$W/mnt-noat2"
    STYLEFS_NO_OPENAT2=1 timeout 20 ./stylefs -o styles="$STYLES",cache="$W/cache-noat2",$opt "$SRC" "$W/mnt-noat2" \
        >"$W/out" 2>"$W/err"
    rc=$?
    if [ $rc = 1 ] && grep -q "needs openat2" "$W/err" && ! grep -q " $W/mnt-noat2 " /proc/mounts; then
        pass "mount refuses $opt without openat2: $(head -c 100 "$W/err")"
    else
        fail "mount refuses $opt without openat2" "exit $rc: $(head -c 300 "$W/err")"
        fusermount3 -u "$W/mnt-noat2" 2>/dev/null
    fi
done
mkdir -p "$W/empty-styles" "$W/full"; touch "$W/full/file"
mistake "a missing mountpoint" "No such file or directory" -o styles="$STYLES" "$SRC" "$W/nowhere"
mistake "a non-empty mountpoint" "is not empty" -o styles="$STYLES" "$SRC" "$W/full"
mistake "a file as mountpoint" "Not a directory" -o styles="$STYLES" "$SRC" "$W/full/file"
mistake "a missing styles folder" "No such file" -o styles="$W/no-styles" "$SRC" "$MNT"
mistake "an empty styles folder" "no styles in .*empty-styles" -o styles="$W/empty-styles" "$SRC" "$MNT"
mistake "a missing source" "No such file" -o styles="$STYLES" "$W/no-source" "$MNT"
./stylefs -o styles="$STYLES",cache="$CACHE",nonempty "$SRC" "$W/full" 2>"$W/err" &&
    [ -d "$W/full/styled" ] && pass "mount: -o nonempty mounts over files when asked" ||
    fail "mount: -o nonempty mounts over files" "$(cat "$W/err")"
fusermount3 -u "$W/full" 2>/dev/null
finish
