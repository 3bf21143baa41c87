#!/bin/sh
# Style a whole folder through the mount with plain cp: every image is
# stylized on first read and cached, so a second run is instant.
#   usage: style-folder.sh SOURCE STYLE DEST
set -eu
src=$1 style=$2 dest=$3
mnt=$(mktemp -d)
stylefs "$src" "$mnt"
trap 'fusermount3 -u "$mnt"; rmdir "$mnt"' EXIT
cp -r "$mnt/styled/$style/." "$dest/"
