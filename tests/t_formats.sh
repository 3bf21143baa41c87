#!/bin/sh
# t_formats.sh: today's photo formats, made with their own Debian tools
# (heif-enc, avifenc, cwebp, ppm2tiff, tiffset, jpegtran): each decodes to
# the picture it was made from (lossless ones exactly, lossy ones within
# their codec's loss), is shown and served under its own name in the
# mount, in its own format (read back by the same tools' decoders), with
# its exact size in stat, and equals `stylefs stylize` to the same name;
# a damaged or truncated file of each is refused with a reason, never
# served; stylize writes each format.
W=$1
. tests/lib.sh
for t in heif-enc heif-convert avifenc cwebp dwebp ppm2tiff tiffset tiffinfo jpegtran exiftool; do
    command -v $t >/dev/null || { fail "formats: the Debian tools" "$t not found (make deps)"; finish; }
done
mkdir -p "$W/src/sub" "$W/ref"
$MK 200 150 "$W/ref/a.png" --seed 601
$MK 160 120 "$W/ref/alpha.png" --seed 602 --alpha
$MK 120 90 "$W/ref/a.jpg" --seed 603 --quality 95
# a 16-bit PPM (ramps) for ppm2tiff
python3 -c "
import struct, sys
w, h = 96, 64
d = bytearray(b'P6\n%d %d\n65535\n' % (w, h))
for y in range(h):
    for x in range(w):
        d += struct.pack('>HHH', (x * 683) % 65536, (y * 1021) % 65536, ((x + y) * 409) % 65536)
open(sys.argv[1], 'wb').write(d)" "$W/ref/r16.ppm"
heif-enc -q 90 -o "$W/src/phone.heic" "$W/ref/a.png" >/dev/null 2>&1
avifenc -q 90 "$W/ref/a.png" "$W/src/web.avif" >/dev/null 2>&1 || avifenc --min 0 --max 20 "$W/ref/a.png" "$W/src/web.avif" >/dev/null 2>&1
cwebp -q 90 "$W/ref/a.png" -o "$W/src/lossy.webp" >/dev/null 2>&1
cwebp -lossless -exact "$W/ref/alpha.png" -o "$W/src/sub/alpha.webp" >/dev/null 2>&1
ppm2tiff "$W/ref/r16.ppm" "$W/src/scan16.tif"
ppm2tiff "$W/ref/r16.ppm" "$W/src/turned.TIFF" && tiffset -s 274 6 "$W/src/turned.TIFF"
jpegtran -progressive "$W/ref/a.jpg" >"$W/src/progressive.jpg"
for f in phone.heic web.avif lossy.webp sub/alpha.webp scan16.tif turned.TIFF progressive.jpg; do
    [ -s "$W/src/$f" ] || fail "formats: make $f with its tool" "nothing written"
done
[ "$(tiffinfo "$W/src/scan16.tif" 2>/dev/null | sed -n 's/.*Bits\/Sample: \([0-9]*\).*/\1/p')" = 16 ] ||
    fail "formats: ppm2tiff made a 16-bit TIFF" "$(tiffinfo "$W/src/scan16.tif" 2>&1 | head -5)"

# decoding: the picture each was made from
check() {   # check NAME FILE REF ARGS...: FILE decodes to REF within ARGS
    name=$1 f=$2 ref=$3
    shift 3
    if r=$($CMP "$ref" "$f" "$@" 2>&1); then pass "decode: $name ($r)"; else fail "decode: $name" "$r"; fi
}
check "HEIC (heif-enc, x265) is its picture" "$W/src/phone.heic" "$W/ref/a.png" --psnr 28
check "AVIF (avifenc, aom) is its picture" "$W/src/web.avif" "$W/ref/a.png" --psnr 28
check "lossy WebP (cwebp) is its picture" "$W/src/lossy.webp" "$W/ref/a.png" --psnr 28
check "lossless WebP with alpha is its picture exactly" "$W/src/sub/alpha.webp" "$W/ref/alpha.png" --within1 1 --psnr 99
check "16-bit TIFF (ppm2tiff) is its picture, to 8 bits" "$W/src/scan16.tif" "$W/ref/r16.ppm" --within1 1
check "progressive JPEG (jpegtran) is the same picture as the baseline" "$W/src/progressive.jpg" "$W/ref/a.jpg" --within1 1 --psnr 99
info=$($CMP --info "$W/src/turned.TIFF")
[ "${info%% *}" = "64x96" ] && pass "decode: a TIFF's orientation tag 6 is applied (96x64 stored, $info)" ||
    fail "decode: TIFF orientation" "$info"
$CMP --info "$W/src/sub/alpha.webp" | grep -q "alpha=1" && pass "decode: a WebP's alpha is kept" ||
    fail "decode: WebP alpha" "$($CMP --info "$W/src/sub/alpha.webp")"

# damaged and cut files of each: refused with a reason
for f in phone.heic web.avif lossy.webp scan16.tif; do
    sz=$(wc -c <"$W/src/$f")
    head -c $((sz / 2)) "$W/src/$f" >"$W/cut.${f##*.}"
    if ! $SF stylize --styles "$STYLES" --no-cache udnie "$W/cut.${f##*.}" "$W/cut.png" 2>"$W/err" && [ ! -e "$W/cut.png" ] &&
        [ -s "$W/err" ]; then
        pass "hostile: $f cut in half is refused ($(head -c 120 "$W/err"))"
    else
        fail "hostile: $f cut in half" "$(cat "$W/err")"
    fi
    rm -f "$W/cut.png"
done

# found by make fuzz: a HEIF whose header says 24x16 but whose image decodes
# to 24x8208 (refused: max_pixels and the memory budget trust the header)
expect_status "hostile: a HEIF decoding to another size than its header's is refused (exit 1)" 1 \
    $SF stylize --styles "$STYLES" --no-cache udnie tests/fuzz/regress/heif-size-mismatch.heic "$W/mm.png"
expect_err "hostile: the size mismatch is said" "decodes to 24x8208, its header says 24x16"

# stylize writes each format, read back by the format's own tool
for ext in webp tif heic avif; do
    $SF stylize --styles "$STYLES" --no-cache udnie "$W/ref/a.png" "$W/out.$ext" 2>"$W/err"
    t=$(exiftool -s -s -s -FileType "$W/out.$ext" 2>/dev/null)
    case $ext in webp) want=WEBP ;; tif) want=TIFF ;; heic) want=HEIC ;; avif) want=AVIF ;; esac
    [ "$t" = "$want" ] && [ "$(exiftool -s -s -s -ImageSize "$W/out.$ext")" = "200x150" ] &&
        pass "stylize writes .$ext as $want (exiftool reads it back, 200x150)" ||
        fail "stylize writes .$ext" "exiftool says '$t'; $(cat "$W/err")"
done
# the quality is part of a lossy format's key: another quality is another file
$SF stylize --styles "$STYLES" --cache "$W/qc" --quality 90 udnie "$W/ref/a.png" "$W/q90.webp" 2>/dev/null
$SF stylize --styles "$STYLES" --cache "$W/qc" --quality 40 -v udnie "$W/ref/a.png" "$W/q40.webp" 2>"$W/err"
! grep -q "cache hit" "$W/err" && ! cmp -s "$W/q90.webp" "$W/q40.webp" &&
    pass "stylize: WebP at quality 40 is not served from quality 90's cache entry" ||
    fail "stylize: the quality in a WebP's key" "$(cat "$W/err")"
dwebp "$W/out.webp" -o "$W/dw.png" >/dev/null 2>&1 && $CMP "$W/out.webp" "$W/dw.png" --psnr 45 >/dev/null &&
    pass "stylize's WebP decodes the same with dwebp" || fail "stylize's WebP through dwebp" "differs"
heif-convert "$W/out.heic" "$W/hc.png" >/dev/null 2>&1 && $CMP "$W/out.heic" "$W/hc.png" --psnr 40 >/dev/null &&
    pass "stylize's HEIC decodes the same with heif-convert" || fail "stylize's HEIC through heif-convert" "differs"

# metadata: a JPEG with EXIF (camera, date, orientation 6, a thumbnail)
# and XMP, written by exiftool; its styled copy in each format keeps them,
# with orientation 1 and no thumbnail (its bytes gone too)
$MK 120 80 "$W/meta.jpg" --seed 610 --quality 95
$MK 48 32 "$W/thumb.jpg" --seed 611
exiftool -q -overwrite_original -Make=Canon -Model="EOS R6" -DateTimeOriginal="2024:05:01 10:00:00" -Orientation#=6 \
    -XMP-dc:Title="Beach" "-ThumbnailImage<=$W/thumb.jpg" "$W/meta.jpg"
[ "$(exiftool -s -s -s -Orientation# "$W/meta.jpg")" = 6 ] && [ -n "$(exiftool -s -s -s -ThumbnailLength "$W/meta.jpg")" ] ||
    fail "metadata: exiftool wrote the test file" "$(exiftool -s "$W/meta.jpg" | head -5)"
for ext in jpg heic webp avif png; do
    $SF stylize --styles "$STYLES" --no-cache udnie "$W/meta.jpg" "$W/m.$ext" 2>"$W/err"
    tags=$(exiftool -s -s -s -Make -Model -DateTimeOriginal -Orientation# -Title -ImageSize "$W/m.$ext" | tr '\n' '|')
    if [ "$tags" = "Canon|EOS R6|2024:05:01 10:00:00|1|Beach|80x120|" ] &&
        [ -z "$(exiftool -s -s -s -ThumbnailImage "$W/m.$ext")" ] &&
        python3 -c "import sys; t=open(sys.argv[1],'rb').read()[-66:-2]; sys.exit(t in open(sys.argv[2],'rb').read())" \
            "$W/thumb.jpg" "$W/m.$ext"; then
        pass "metadata: .$ext keeps EXIF and XMP (exiftool: $tags), orientation 1, no thumbnail"
    else
        fail "metadata: .$ext keeps EXIF" "exiftool: $tags; thumbnail: $(exiftool -s -s -s -ThumbnailLength "$W/m.$ext"); $(cat "$W/err")"
    fi
done
$SF stylize --styles "$STYLES" --no-cache udnie "$W/m.heic" "$W/fromheic.jpg" 2>/dev/null
[ "$(exiftool -s -s -s -Make -Title "$W/fromheic.jpg" | tr '\n' '|')" = "Canon|Beach|" ] &&
    pass "metadata: a HEIC's EXIF and XMP are kept on its styled copy" ||
    fail "metadata: from HEIC" "$(exiftool -s -Make -Title "$W/fromheic.jpg")"
# PNG (eXIf, iTXt XMP, iCCP) and TIFF (XMP, ICC; a TIFF's EXIF is not
# carried): an ICC profile of 3 kB made here goes through each, byte for
# byte, and a PNG's EXIF and XMP come back out into a JPEG
python3 -c "
import struct, sys
desc = b'stylefs test profile'
tag = b'desc' + b'\0' * 4 + struct.pack('>I', len(desc) + 1) + desc + b'\0' + b'\0' * 8 + b'\0' * 3 + b'\0' * 67
pad = bytes(range(256)) * 11
body = struct.pack('>I', 1) + b'desc' + struct.pack('>II', 144, len(tag)) + tag + pad
hdr = struct.pack('>I', 128 + len(body)) + b'none' + bytes([2, 0x10, 0, 0]) + b'mntrRGB XYZ ' + b'\0' * 12 + b'acsp' + b'\0' * 24 \
    + struct.pack('>I', 0) + struct.pack('>iii', 63190, 65536, 54061) + b'\0' * 48
open(sys.argv[1], 'wb').write(hdr + body)" "$W/p.icc"
cp "$W/meta.jpg" "$W/metaicc.jpg"
exiftool -q -overwrite_original "-ICC_Profile<=$W/p.icc" "$W/metaicc.jpg"
for ext in png tif; do
    $SF stylize --styles "$STYLES" --no-cache udnie "$W/metaicc.jpg" "$W/mi.$ext" 2>"$W/err"
    exiftool -q -b -ICC_Profile "$W/mi.$ext" >"$W/mi.$ext.icc"
    cmp -s "$W/mi.$ext.icc" "$W/p.icc" && [ "$(exiftool -s -s -s -Title "$W/mi.$ext")" = Beach ] &&
        pass "metadata: .$ext keeps the ICC profile byte for byte ($(wc -c <"$W/p.icc") bytes) and the XMP" ||
        fail "metadata: .$ext keeps the ICC profile and XMP" "$(exiftool -s -ProfileDescription -Title "$W/mi.$ext"); $(cat "$W/err")"
done
$SF stylize --styles "$STYLES" --no-cache udnie "$W/mi.png" "$W/frompng.jpg" 2>/dev/null
exiftool -q -b -ICC_Profile "$W/frompng.jpg" >"$W/frompng.icc"
[ "$(exiftool -s -s -s -Make -Title -Orientation# "$W/frompng.jpg" | tr '\n' '|')" = "Canon|Beach|1|" ] && cmp -s "$W/frompng.icc" "$W/p.icc" &&
    pass "metadata: a PNG's EXIF, XMP and ICC profile are kept on its styled copy" ||
    fail "metadata: from PNG" "$(exiftool -s -Make -Title -ProfileDescription "$W/frompng.jpg")"
# an iCCP that inflates past 16 MiB (a 20 MB profile of zeros in 20 kB) is
# left out, and the image still reads
python3 -c "
import struct, sys, zlib
d = open(sys.argv[1], 'rb').read()
body = b'big\0\0' + zlib.compress(b'\0' * 20000000, 9)
ch = struct.pack('>I', len(body)) + b'iCCP' + body + struct.pack('>I', zlib.crc32(b'iCCP' + body))
open(sys.argv[2], 'wb').write(d[:33] + ch + d[33:])" "$W/ref/a.png" "$W/iccbomb.png"
/usr/bin/time -f %M -o "$W/iccbomb.rss" $SF stylize --styles "$STYLES" --no-cache udnie "$W/iccbomb.png" "$W/iccbomb.out.png" 2>"$W/err"
[ -s "$W/iccbomb.out.png" ] && [ -z "$(exiftool -s -s -s -ICC_Profile "$W/iccbomb.out.png")" ] &&
    pass "metadata: a PNG profile inflating past 16 MiB is left out; the image reads (max RSS $(($(cat "$W/iccbomb.rss") / 1024)) MiB)" ||
    fail "metadata: an iCCP bomb" "$(cat "$W/err")"
$SF stylize --styles "$STYLES" --no-cache --strip-meta udnie "$W/meta.jpg" "$W/strip.jpg" 2>/dev/null
[ -z "$(exiftool -s -s -s -Make -Title -DateTimeOriginal "$W/strip.jpg")" ] &&
    pass "metadata: --strip-meta leaves out EXIF and XMP" || fail "metadata: --strip-meta" "$(exiftool -s "$W/strip.jpg" | grep -i "make\|title")"

if fuse_usable; then
    SRC=$W/src MNT=$W/mnt CACHE=$W/cache LOG=$W/daemon.log
    cp "$W/meta.jpg" "$SRC/meta.jpg"
    mkdir -p "$MNT"
    if mount_it; then
        (cd "$MNT/styled/udnie" && find . -type f | sort) >"$W/ls"
        [ "$(tr '\n' ' ' <"$W/ls")" = "./lossy.webp ./meta.jpg ./phone.heic ./progressive.jpg ./scan16.tif ./sub/alpha.webp ./turned.TIFF ./web.avif " ] &&
            pass "mount: HEIC, AVIF, WebP and TIFF are shown under their own names" ||
            fail "mount: the new formats listed" "$(cat "$W/ls")"
        for f in phone.heic web.avif lossy.webp sub/alpha.webp scan16.tif turned.TIFF progressive.jpg; do
            m=$MNT/styled/udnie/$f
            cp "$m" "$W/got" 2>"$W/err" || { fail "mount: read $f" "$(cat "$W/err"; tail -2 "$LOG")"; continue; }
            t=$(exiftool -s -s -s -FileTypeExtension "$W/got" 2>/dev/null)
            want=$(exiftool -s -s -s -FileTypeExtension "$SRC/$f" 2>/dev/null)
            $SF stylize --styles "$STYLES" --no-cache udnie "$SRC/$f" "$W/want.${f##*.}" 2>/dev/null
            if [ "$t" = "$want" ] && [ "$(stat -c %s "$m")" = "$(wc -c <"$W/got")" ] && cmp -s "$W/got" "$W/want.${f##*.}"; then
                pass "mount: $f is served as $t, its exact size in stat, the bytes of stylize"
            else
                fail "mount: $f served" "type '$t' (want '$want'), stat $(stat -c %s "$m"), read $(wc -c <"$W/got"); $(tail -2 "$LOG")"
            fi
        done
        $CMP --info "$MNT/styled/udnie/sub/alpha.webp" | grep -q "alpha=1" &&
            pass "mount: a WebP's alpha is put back on the styled WebP" || fail "mount: WebP alpha kept" "no alpha"
        [ "$(exiftool -s -s -s -Make "$MNT/styled/udnie/meta.jpg")" = Canon ] &&
            pass "mount: a styled JPEG keeps its source's EXIF" || fail "mount: EXIF kept" "$(exiftool -s "$MNT/styled/udnie/meta.jpg" | head -5)"
        unmount_it || fail "unmount" "the daemon did not exit"
        if mount_it -o strip_meta; then
            [ -z "$(exiftool -s -s -s -Make "$MNT/styled/udnie/meta.jpg")" ] && cp "$MNT/styled/udnie/meta.jpg" "$W/sm.jpg" &&
                [ "$(stat -c %s "$W/sm.jpg")" = "$(stat -c %s "$MNT/styled/udnie/meta.jpg")" ] &&
                pass "mount: -o strip_meta serves no EXIF (its own cache key)" || fail "mount: strip_meta" "$(exiftool -s "$MNT/styled/udnie/meta.jpg" | head -5)"
            unmount_it || fail "unmount" "the daemon did not exit"
        fi
    else
        fail "mount with the new formats" "$(tail -3 "$LOG")"
    fi
else
    skip "mount: the new formats" "no FUSE here"
fi
echo "END t_formats.sh"
