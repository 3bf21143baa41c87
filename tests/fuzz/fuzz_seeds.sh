#!/bin/sh
# fuzz_seeds.sh MKIMG DIR: small seeds for `make fuzz`, one of each input
# the hardening tests use (tests/t_hostile.sh), at fuzzing sizes.
MK=$1 D=$2
$MK 24 16 "$D/rgb.jpg"; $MK 24 16 "$D/rgb.png"; $MK 24 16 "$D/rgba.png" --alpha
$MK 24 16 "$D/gray.png" --gray; $MK 24 16 "$D/graya.png" --gray --alpha; $MK 24 16 "$D/d16.png" --depth16
$MK 24 16 "$D/pal.png" --palette; $MK 24 16 "$D/anim.gif"; $MK 24 16 "$D/cmyk.jpg" --cmyk
$MK 24 16 "$D/in.bmp"; $MK 24 16 "$D/in.tga"; $MK 24 16 "$D/in.ppm"; $MK 24 16 "$D/in.pgm" --gray
for o in 2 5 6 8; do $MK 24 16 "$D/exif$o.jpg" --exif $o; done
$MK 1 1 "$D/1x1.png"; $MK 1 40 "$D/1x40.png"; $MK 40 1 "$D/40x1.jpg"
$MK 65535 65535 "$D/claim.png" --claim; $MK 3000 3000 "$D/bomb.png" --bomb
for f in rgb.jpg rgb.png in.tga; do s=$(wc -c <"$D/$f"); head -c $((s / 2)) "$D/$f" >"$D/cut-$f"; done
: >"$D/empty"; echo "not an image" >"$D/text.jpg"
# the formats through Debian's libraries (codecs.c), made by their own tools
# where installed (make deps): HEIC, AVIF, WebP (lossy, lossless with
# alpha), TIFF (8 and 16 bit, turned), and each cut in half
if command -v heif-enc >/dev/null && command -v cwebp >/dev/null && command -v ppm2tiff >/dev/null; then
    heif-enc -q 50 -o "$D/in.heic" "$D/rgb.png" >/dev/null 2>&1
    command -v avifenc >/dev/null && avifenc "$D/rgb.png" "$D/in.avif" >/dev/null 2>&1
    cwebp -q 50 "$D/rgb.png" -o "$D/in.webp" >/dev/null 2>&1
    cwebp -lossless "$D/rgba.png" -o "$D/rgba.webp" >/dev/null 2>&1
    ppm2tiff "$D/in.ppm" "$D/in.tif"
    $MK 24 16 "$D/d16.ppm" 2>/dev/null && ppm2tiff "$D/d16.ppm" "$D/turned.tif" && tiffset -s 274 6 "$D/turned.tif"
    for f in in.heic in.avif in.webp in.tif; do
        [ -f "$D/$f" ] && s=$(wc -c <"$D/$f") && head -c $((s / 2)) "$D/$f" >"$D/cut-$f"
    done
fi
# metadata: a PNG with eXIf (from a JPEG's EXIF), iTXt XMP and a small iCCP,
# and a TIFF with XMP and ICC, made by exiftool where installed
if command -v exiftool >/dev/null; then
    cp "$D/rgb.png" "$D/meta.png"; cp "$D/in.tif" "$D/meta.tif" 2>/dev/null
    python3 -c "import sys; open(sys.argv[1], 'wb').write(b'\0\0\1\0none' + bytes(120))" "$D/p.icc"
    exiftool -q -overwrite_original -Make=Canon -Orientation#=6 -XMP-dc:Title=Beach "-ICC_Profile<=$D/p.icc" \
        "$D/meta.png" "$D/meta.tif" 2>/dev/null
    rm -f "$D/p.icc"
fi
