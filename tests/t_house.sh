#!/bin/sh
# t_house.sh: the house's layering, read from the sources' #include lines:
# no header includes (directly or through others) one that includes it
# back; the style loader reaches neither the cache nor the pipeline; the
# filesystem reaches no command-line header; engines reach no style
# loader.  A header is found as the build finds it (-Isrc -Icache -Icpu
# -Iarbitrary -Ikernels, then the including file's own folder).  In src/,
# no module (X.c with X.h) uses another that uses it back.
. tests/lib.sh
W=$1
python3 - >"$W/house.out" 2>&1 <<'PY'
import os, re, sys
dirs = ["src", "cache", "cpu", "arbitrary", "kernels"]
files = [os.path.join(d, f) for d in dirs for f in os.listdir(d) if f.endswith((".c", ".h", ".cu"))]
def find(name, here):
    for d in [os.path.dirname(here)] + dirs:
        p = os.path.join(d, name)
        if os.path.isfile(p):
            return os.path.normpath(p)
    return None
inc = {}
for f in files:
    inc[f] = [p for n in re.findall(r'^#include "([^"]+)"', open(f).read(), re.M) for p in [find(n, f)] if p]
def reach(f):
    seen, todo = set(), list(inc.get(f, []))
    while todo:
        g = todo.pop()
        if g not in seen:
            seen.add(g)
            todo += inc.get(g, [])
    return seen
bad = []
for f in files:
    if f.endswith(".h") and f in reach(f):
        bad.append("include cycle through " + f)
# src/'s modules (X.c with X.h): none uses another that uses it back
mod = lambda f: os.path.splitext(f)[0]
uses = {}
for f in files:
    if f.startswith("src/"):
        uses.setdefault(mod(f), set()).update(mod(g) for g in inc[f] if g.startswith("src/") and mod(g) != mod(f))
for a in sorted(uses):
    for b in sorted(uses[a]):
        if a < b and a in uses.get(b, ()):
            bad.append("modules %s and %s use each other" % (a, b))
rules = [("src/style.c", "cache/cache.h"), ("src/style.c", "src/pipeline.h"), ("src/style.h", "cache/cache.h"),
         ("src/fs.c", "src/cli.h"), ("src/engine.h", "src/style.h"), ("cpu/cpu_engine.c", "src/style.h"),
         ("kernels/engine_cuda.c", "src/style.h"), ("src/model.h", "src/engine.h")]
for f, h in rules:
    if h in reach(f):
        bad.append(f + " reaches " + h)
print("; ".join(bad) if bad else "ok: %d files, %d include lines" % (len(files), sum(map(len, inc.values()))))
sys.exit(1 if bad else 0)
PY
if [ $? = 0 ]; then pass "house: no include cycle; style loader, filesystem and engines stay on their floors ($(cat "$W/house.out"))"
else fail "house: layering" "$(cat "$W/house.out")"; fi
finish
