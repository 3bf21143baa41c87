#!/bin/sh
# gallery.sh: one photo in every style, as one contact-sheet picture
# (the original first), then a row of paintings as styles: the photo in
# each of up to three PAINTINGS, then in the first at 25, 50 and 75
# percent.  `make gallery` runs it on a sample photo and writes
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
set -- "$photo"
for s in $($SF styles ${styles:+--styles "$styles"} | cut -f1); do
    $SF stylize ${styles:+--styles "$styles"} --no-cache --max-side 256 "$s" "$photo" "$tmp/$s.png"
    set -- "$@" "$tmp/$s.png"
done
if [ -n "$paintings" ]; then
    set -- "$@" --
    first=
    for p in $paintings; do
        n=$(basename "${p%.*}")
        $SF stylize --style-image "$p" ${ARBITRARY:+--arbitrary "$ARBITRARY"} ${styles:+--styles "$styles"} \
            --no-cache --max-side 256 "$photo" "$tmp/p_$n.png"
        set -- "$@" "$tmp/p_$n.png"
        first=${first:-$p}
    done
    for pc in 25 50 75; do
        $SF stylize --style-image "$first" --strength $pc ${ARBITRARY:+--arbitrary "$ARBITRARY"} \
            ${styles:+--styles "$styles"} --no-cache --max-side 256 "$photo" "$tmp/p_$pc.png"
        set -- "$@" "$tmp/p_$pc.png"
    done
fi
"$GALLERY" "$out" 256 "$@"
