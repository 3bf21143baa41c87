#!/bin/sh
# gallery.sh: one photo in every style, as one contact-sheet picture
# (the original first), each tile labelled; then the first network at 25,
# 50 and 75 percent and with the photo's colours; then a row of paintings
# as styles: the photo in each of up to three PAINTINGS, then in the first
# at 25, 50 and 75 percent and with the photo's colours.  `make gallery` runs it on a sample photo and writes
# build/gallery.png.
#   usage: gallery.sh PHOTO OUT.png [STYLES_DIR [PAINTING...]]
# Paintings need the arbitrary-style networks (ARBITRARY, or
# STYLES_DIR/arbitrary).
# SF and GALLERY name the stylefs binary and the gallery tool
# (examples/gallery.c) when they are not on PATH.
set -eu
photo=$1 out=$2 styles=${3:-}
shift 2
if [ $# -gt 0 ]; then shift; fi
paintings="$*"
SF=${SF:-stylefs} GALLERY=${GALLERY:-gallery}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$photo" "$tmp/original.${photo##*.}"
set -- "$tmp/original.${photo##*.}"
for s in $($SF styles ${styles:+--styles "$styles"} | cut -f1); do
    $SF stylize ${styles:+--styles "$styles"} --no-cache --max-side 256 "$s" "$photo" "$tmp/$s.png"
    set -- "$@" "$tmp/$s.png"
done
# a network's strength and colours: the first network at 25, 50 and 75
# percent, and with the photo's colours
net=$($SF styles ${styles:+--styles "$styles"} | awk -F'\t' '$2 ~ /^network/ {print $1; exit}')
if [ -n "$net" ]; then
    set -- "$@" --
    for v in $net@25 $net@50 $net@75 $net+colors; do
        $SF stylize ${styles:+--styles "$styles"} --no-cache --max-side 256 "$v" "$photo" "$tmp/$v.png"
        set -- "$@" "$tmp/$v.png"
    done
fi
if [ -n "$paintings" ]; then
    set -- "$@" --
    first=
    for p in $paintings; do
        n=$(basename "${p%.*}")
        $SF stylize --style-image "$p" ${ARBITRARY:+--arbitrary "$ARBITRARY"} ${styles:+--styles "$styles"} \
            --no-cache --max-side 256 "$photo" "$tmp/painting $n.png"
        set -- "$@" "$tmp/painting $n.png"
        first=${first:-$p}
    done
    set -- "$@" --
    fn=$(basename "${first%.*}")
    for pc in 25 50 75; do
        $SF stylize --style-image "$first" --strength $pc ${ARBITRARY:+--arbitrary "$ARBITRARY"} \
            ${styles:+--styles "$styles"} --no-cache --max-side 256 "$photo" "$tmp/$fn@$pc.png"
        set -- "$@" "$tmp/$fn@$pc.png"
    done
    $SF stylize --style-image "$first" --colors ${ARBITRARY:+--arbitrary "$ARBITRARY"} \
        ${styles:+--styles "$styles"} --no-cache --max-side 256 "$photo" "$tmp/$fn+colors.png"
    set -- "$@" "$tmp/$fn+colors.png"
fi
"$GALLERY" "$out" 256 "$@"
