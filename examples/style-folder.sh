#!/bin/sh
# Style a whole folder through the mount with plain cp: every image is
# stylized on first read and cached, so a second run is instant.
#   usage: style-folder.sh SOURCE STYLE DEST
# SF names the stylefs binary and STYLEFS_OPTS adds mount options
# (e.g. "-o styles=DIR,cache=DIR").
set -eu
src=$1 style=$2 dest=$3
SF=${SF:-stylefs}
mnt=$(mktemp -d)
$SF ${STYLEFS_OPTS:-} "$src" "$mnt"
trap 'fusermount3 -u "$mnt"; rmdir "$mnt"' EXIT
cp -r "$mnt/styled/$style/." "$dest/"
