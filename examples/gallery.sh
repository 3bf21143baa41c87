#!/bin/sh
# gallery.sh: one photo in every style, as one contact-sheet picture
# (the original first).  `make gallery` runs it on a sample photo and
# writes build/gallery.png.
#   usage: gallery.sh PHOTO OUT.png [STYLES_DIR]
# SF and GALLERY name the stylefs binary and the gallery tool
# (examples/gallery.c) when they are not on PATH.
set -eu
photo=$1 out=$2 styles=${3:-}
SF=${SF:-stylefs} GALLERY=${GALLERY:-gallery}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
set -- "$photo"
for s in $($SF styles ${styles:+--styles "$styles"} | cut -f1); do
    $SF stylize ${styles:+--styles "$styles"} --no-cache --max-side 256 "$s" "$photo" "$tmp/$s.png"
    set -- "$@" "$tmp/$s.png"
done
"$GALLERY" "$out" 256 "$@"
