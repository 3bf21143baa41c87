#!/bin/sh
# serve-http.sh: serve a mounted styled/ tree over HTTP with a stock web
# server (Python's http.server), then fetch one styled image with curl.
# The first request of an image stylizes it; later ones come from the cache.
#   usage: serve-http.sh SOURCE PORT [IMAGE-RELATIVE-PATH [STYLE]]
# e.g.     serve-http.sh ~/Pictures 8080 holiday/beach.jpg wave
# Any web server works the same way (nginx: root /mnt/styled;).
set -eu
src=$1 port=$2 img=${3:-} style=${4:-udnie}
SF=${SF:-stylefs}
mnt=$(mktemp -d)
$SF ${STYLEFS_OPTS:-} "$src" "$mnt"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$mnt/styled" >/dev/null 2>&1 &
web=$!
trap 'kill $web; fusermount3 -u "$mnt"; rmdir "$mnt"' EXIT
for i in $(seq 50); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
if [ -n "$img" ]; then
    curl -fsS -o "styled-$(basename "$img")" "http://127.0.0.1:$port/$style/$img"
    echo "fetched http://127.0.0.1:$port/$style/$img -> styled-$(basename "$img")"
else
    echo "serving http://127.0.0.1:$port/ (Ctrl-C stops)"; wait $web
fi
