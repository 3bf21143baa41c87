#!/bin/sh
# t_cli.sh: the stylize / styles / stats / prune commands end to end:
# the oracle (golden files from ONNX Runtime), every codec path, the
# cache through the CLI, exit codes and messages.
W=$1
. tests/lib.sh
G=tests/golden
S="--styles $STYLES"

# --- the engine against the ONNX Runtime oracle -------------------------------
# at every instruction-set level this CPU runs (STYLEFS_CPU_ISA), as each
# runs by default; then, at the best level, all in float32 (on CPUs with
# AVX512_VNNI / AVX512_BF16 the default has int16 and bf16 layers)
LEVELS=$($SF --version | sed -n 's/.*kernels this CPU runs: \([a-z0-9 ]*\)).*/\1/p')
BEST=${LEVELS%% *}
[ -n "$BEST" ] && pass "engine: --version lists the levels this CPU runs ($LEVELS)" ||
    fail "engine: --version lists the levels this CPU runs" "$($SF --version)"
for lv in $LEVELS $BEST; do
bf=1; label=" at $lv"
[ "$lv" = "$BEST" ] && [ -n "${seen_best:-}" ] && bf=0 label=" at $lv (STYLEFS_CPU_BF16=0)"
[ "$lv" = "$BEST" ] && seen_best=1
for s in udnie wave scream; do
    for sz in 64x64 37x29 128x128; do
        name="oracle: $s at $sz matches ONNX Runtime$label"
        # multiples of 4: the oracle's own guarantee (99.9% within 1);
        # other sizes: the same bar, crop included
        if STYLEFS_CPU_ISA=$lv STYLEFS_CPU_BF16=$bf $SF stylize $S --no-cache --max-side 0 $s $G/in_$sz.ppm "$W/o.png" 2>"$W/err" &&
            r=$($CMP $G/${s}_$sz.ppm "$W/o.png" --within1 0.999 --psnr 45); then
            pass "$name ($r)"
        else
            fail "$name" "$r $(cat "$W/err")"
        fi
    done
done
done
# the same bytes whatever the number of threads, at every level: the
# norms' sums are added up block by block in order, not per thread
# (300x200: bf16 layers where the CPU has them, several Winograd blocks)
$MK 300 200 "$W/thr.ppm" --seed 11
for lv in $LEVELS; do
    ok=1 why=
    for t in 1 2 3; do
        OMP_NUM_THREADS=$t STYLEFS_CPU_ISA=$lv $SF stylize $S --no-cache udnie "$W/thr.ppm" "$W/thr$t.png" \
            2>"$W/err" || { ok=; why="$t threads: $(cat "$W/err")"; }
    done
    if [ -n "$ok" ] && cmp -s "$W/thr1.png" "$W/thr2.png" && cmp -s "$W/thr1.png" "$W/thr3.png"; then
        pass "engine: at $lv 1, 2 and 3 threads give the same bytes"
    else
        fail "engine: at $lv 1, 2 and 3 threads give the same bytes" "${why:-$(cmp "$W/thr1.png" "$W/thr2.png"; cmp "$W/thr1.png" "$W/thr3.png")}"
    fi
done
# our own 3x3 kernels for layers 1-14 (what a NEON-only CPU runs), here too
for s in udnie scream; do
    for sz in 64x64 37x29; do
        name="oracle: $s at $sz matches ONNX Runtime with layers 1-14 on our 3x3 kernels (STYLEFS_CPU_DNNL=0)"
        if STYLEFS_CPU_DNNL=0 $SF stylize $S --no-cache --max-side 0 -v $s $G/in_$sz.ppm "$W/o.png" 2>"$W/err" &&
            grep -q "layer  3: stylefs conv3x3" "$W/err" &&
            r=$($CMP $G/${s}_$sz.ppm "$W/o.png" --within1 0.999 --psnr 45); then
            pass "$name ($r)"
        else
            fail "$name" "$r $(tail -c 400 "$W/err")"
        fi
    done
done
# no layer runs a reference implementation at any vector level: neither
# oneDNN's ref:any nor our portable kernels (those are for generic only)
for lv in $LEVELS; do
    [ "$lv" = generic ] && continue
    STYLEFS_CPU_ISA=$lv $SF stylize $S --no-cache -v udnie $G/in_37x29.ppm "$W/o.png" 2>"$W/err"
    grep 'cpu plan: layer' "$W/err" >"$W/plan"
    n=$(wc -l <"$W/plan")
    bad=$(grep -E 'ref|generic|\?' "$W/plan" | head -3)
    ours=$(grep -c 'stylefs ' "$W/plan")
    if [ "$n" = 16 ] && [ -z "$bad" ] && [ "$ours" -ge 2 ]; then
        pass "engine: at $lv no layer runs a reference implementation ($(sed -n 's/.*layer  1: //p' "$W/plan") ...)"
    else
        fail "engine: at $lv no layer runs a reference implementation" "$n plan lines; $bad $(head -c 600 "$W/err")"
    fi
done
# a level this CPU cannot run, or no level at all, is refused clearly
for lv in bogus $(for l in avx512 avx2 neon; do case " $LEVELS " in *" $l "*) ;; *) echo $l ;; esac; done); do
    expect_status "engine: STYLEFS_CPU_ISA=$lv is refused here (exit 1)" 1 \
        env STYLEFS_CPU_ISA=$lv $SF stylize $S --no-cache udnie $G/in_37x29.ppm "$W/o.png"
    expect_err "engine: STYLEFS_CPU_ISA=$lv is refused with a reason" "STYLEFS_CPU_ISA=$lv: "
done
# the log says which precision ran, and it follows the CPU
l0= all=all
if grep -qw avx512_vnni /proc/cpuinfo 2>/dev/null; then l0="layer 0 in int16 (AVX512_VNNI), " all="the rest"
elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then l0="layer 0 in int16 (AVX2 vpmaddwd), " all="the rest"; fi
if grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null; then want="${l0}layers 13-15 in bf16"
else want="${l0}$all float32 (no AVX512_BF16)"; fi
if $SF stylize $S --no-cache -v udnie $G/in_37x29.ppm "$W/o.png" 2>"$W/err" && grep -q "engine: cpu.*$want" "$W/err" &&
    STYLEFS_CPU_BF16=0 $SF stylize $S --no-cache -v udnie $G/in_37x29.ppm "$W/o.png" 2>"$W/err2" &&
    grep -q "engine: cpu.*all float32" "$W/err2"; then
    pass "engine: the log names the CPU precision ($want; float32 with STYLEFS_CPU_BF16=0)"
else
    fail "engine: the log names the CPU precision" "wanted '$want': $(cat "$W/err" "$W/err2")"
fi
case " $LEVELS " in *" avx2 "*)         # what an AVX2-only CPU runs
    if STYLEFS_CPU_ISA=avx2 $SF stylize $S --no-cache -v udnie $G/in_37x29.ppm "$W/o.png" 2>"$W/err" &&
        grep -q "engine: cpu.*layer 0 in int16 (AVX2 vpmaddwd), the rest float32" "$W/err" &&
        grep -q "cpu plan: layer  0: stylefs conv0 avx2 (int16 sums)" "$W/err"; then
        pass "engine: at avx2, layer 0 sums in int16 (vpmaddwd), and the log says so"
    else
        fail "engine: at avx2, layer 0 sums in int16" "$(grep -E 'engine:|layer  0' "$W/err")"
    fi ;;
esac

# --- codecs --------------------------------------------------------------------
$MK 40 30 "$W/rgb.png"; $MK 40 30 "$W/rgba.png" --alpha; $MK 40 30 "$W/gray.png" --gray
$MK 40 30 "$W/graya.png" --gray --alpha; $MK 40 30 "$W/d16.png" --depth16
$MK 40 30 "$W/d16a.png" --depth16 --alpha; $MK 40 30 "$W/in.jpg"; $MK 40 30 "$W/in.bmp"
$MK 40 30 "$W/in.tga"; $MK 40 30 "$W/in.ppm"; $MK 40 30 "$W/in.pgm" --gray
# a 1x1 GIF89a (first frame is all there is to read)
printf 'GIF89a\001\000\001\000\200\000\000\377\000\000\000\000\000!\371\004\001\000\000\000\000,\000\000\000\000\001\000\001\000\000\002\002D\001\000;' >"$W/in.gif"
# a raw 3-channel 8-bit PSD, 4x2
{ printf '8BPS\000\001\000\000\000\000\000\000\000\003\000\000\000\002\000\000\000\004\000\010\000\003'
  printf '\000\000\000\000\000\000\000\000\000\000\000\000\000\000'
  head -c 24 /dev/urandom; } >"$W/in.psd"

for f in rgb.png rgba.png gray.png graya.png d16.png d16a.png in.jpg in.bmp in.tga in.ppm in.pgm in.gif in.psd; do
    for o in png jpg; do
        name="codec: $f -> .$o"
        if $SF stylize $S --no-cache udnie "$W/$f" "$W/out.$o" 2>"$W/err" &&
            info=$($CMP --info "$W/out.$o") && src=$($CMP --info "$W/$f"); then
            sw=$(echo "$src" | cut -d' ' -f1); ow=$(echo "$info" | cut -d' ' -f1)
            sa=$(echo "$src" | grep -o 'alpha=[01]'); oa=$(echo "$info" | grep -o 'alpha=[01]')
            want_a=$sa; [ $o = jpg ] && want_a=alpha=0
            if [ "$sw" = "$ow" ] && [ "$oa" = "$want_a" ]; then pass "$name ($info)"
            else fail "$name" "source $src, output $info"; fi
        else
            fail "$name" "$(cat "$W/err")"
        fi
    done
done
for o in bmp tga; do
    if $SF stylize $S --no-cache udnie "$W/rgba.png" "$W/out.$o" 2>"$W/err" &&
        $CMP --info "$W/out.$o" | grep -q 'alpha=1'; then pass "codec: .$o keeps alpha"
    else fail "codec: .$o keeps alpha" "$(cat "$W/err")"; fi
done

cp "$W/rgb.png" "$W/png-named.jpg"
expect_status "codec: format from the bytes (PNG named .jpg)" 0 \
    $SF stylize $S --no-cache udnie "$W/png-named.jpg" "$W/o.png"
$MK 400 100 "$W/wide.png"
$SF stylize $S --no-cache --max-side 100 udnie "$W/wide.png" "$W/o.png" 2>/dev/null
if $CMP --info "$W/o.png" | grep -q '^100x25 '; then pass "--max-side downscales to 100x25"
else fail "--max-side downscales to 100x25" "$($CMP --info "$W/o.png")"; fi
$SF stylize $S --no-cache --max-side 0 udnie "$W/wide.png" "$W/o.png" 2>/dev/null
if $CMP --info "$W/o.png" | grep -q '^400x100 '; then pass "--max-side 0 keeps the size"
else fail "--max-side 0 keeps the size" "$($CMP --info "$W/o.png")"; fi
expect_status "--max-pixels refuses a larger image" 1 \
    $SF stylize $S --no-cache --max-pixels 30000 udnie "$W/wide.png" "$W/o.png"
expect_err "--max-pixels message says why" "over the limit"
$SF stylize $S --no-cache --quality 50 udnie "$W/in.jpg" "$W/q50.jpg" 2>/dev/null
$SF stylize $S --no-cache --quality 95 udnie "$W/in.jpg" "$W/q95.jpg" 2>/dev/null
if [ "$(wc -c <"$W/q50.jpg")" -lt "$(wc -c <"$W/q95.jpg")" ]; then pass "--quality changes JPEG output"
else fail "--quality changes JPEG output" "q50 not smaller than q95"; fi
cat "$W/rgb.png" | $SF stylize $S --no-cache --format png udnie - - >"$W/pipe.png" 2>"$W/err"
if $SF stylize $S --no-cache udnie "$W/rgb.png" "$W/file.png" && cmp -s "$W/pipe.png" "$W/file.png"; then
    pass "stdin to stdout gives the same bytes as files"
else fail "stdin to stdout gives the same bytes as files" "$(cat "$W/err")"; fi

# --- bad input ---------------------------------------------------------------------
: >"$W/empty.jpg"; echo "hello" >"$W/text.png"; head -c 4000 /dev/urandom >"$W/random.jpg"
$MK 64 64 "$W/full.jpg"; head -c 600 "$W/full.jpg" >"$W/trunc.jpg"
$MK 64 64 "$W/full.png"; head -c 300 "$W/full.png" >"$W/trunc.png"
for f in empty.jpg text.png random.jpg trunc.jpg trunc.png; do
    expect_status "bad input $f: exit 1" 1 $SF stylize $S --no-cache udnie "$W/$f" "$W/bad.png"
    expect_err "bad input $f: message names the file" "stylefs: stylize: $W/$f: "
done
[ ! -e "$W/bad.png" ] && pass "bad input leaves no output file" || fail "bad input leaves no output file" "bad.png exists"

# --- the cache through the CLI --------------------------------------------------------
C="--cache $W/cache"
$SF stylize $S $C -v udnie "$W/rgb.png" "$W/c1.png" 2>"$W/err"
grep -q "computed and cached" "$W/err" && pass "cache: first run computes" || fail "cache: first run computes" "$(cat "$W/err")"
$SF stylize $S $C -v udnie "$W/rgb.png" "$W/c2.png" 2>"$W/err"
grep -q "cache hit" "$W/err" && cmp -s "$W/c1.png" "$W/c2.png" && pass "cache: second run hits, same bytes" ||
    fail "cache: second run hits, same bytes" "$(cat "$W/err")"
cp "$W/rgb.png" "$W/other name.png"
$SF stylize $S $C -v udnie "$W/other name.png" "$W/c3.png" 2>"$W/err"
grep -q "cache hit" "$W/err" && pass "cache: same bytes under another name hit" || fail "cache: same bytes under another name hit" "$(cat "$W/err")"
$SF stylize $S $C -v --max-side 20 udnie "$W/rgb.png" "$W/c4.png" 2>"$W/err"
grep -q "computed" "$W/err" && pass "cache: another --max-side misses" || fail "cache: another --max-side misses" "$(cat "$W/err")"
$SF stylize $S $C -v wave "$W/rgb.png" "$W/c5.png" 2>"$W/err"
grep -q "computed" "$W/err" && pass "cache: another style misses" || fail "cache: another style misses" "$(cat "$W/err")"
$SF stylize $S $C -v udnie "$W/rgb.png" "$W/c6.jpg" 2>"$W/err"
grep -q "computed" "$W/err" && pass "cache: another output format misses" || fail "cache: another output format misses" "$(cat "$W/err")"
$MK 40 30 "$W/edited.png" --seed 7
$SF stylize $S $C -v udnie "$W/edited.png" "$W/c7.png" 2>"$W/err"
grep -q "computed" "$W/err" && pass "cache: edited source misses" || fail "cache: edited source misses" "$(cat "$W/err")"
$SF stylize $S $C -v --no-cache udnie "$W/rgb.png" "$W/c8.png" 2>"$W/err"
grep -q "computed, " "$W/err" && pass "cache: --no-cache bypasses it" || fail "cache: --no-cache bypasses it" "$(cat "$W/err")"
n=$($SF stats $C | sed -n 's/^entries: *//p')
[ "$n" = 5 ] && pass "stats: counts 5 entries" || fail "stats: counts 5 entries" "got '$n'"
$SF stats $C >"$W/stats"
for k in entries bytes "oldest read" "newest read" "file size"; do
    grep -q "^$k:" "$W/stats" || { fail "stats: prints $k" "$(cat "$W/stats")"; continue; }
    pass "stats: prints $k"
done

# two processes writing at once
$MK 50 40 "$W/p1.png" --seed 11; $MK 50 40 "$W/p2.png" --seed 12
$SF stylize $S --cache "$W/cache2" udnie "$W/p1.png" "$W/q1.png" 2>"$W/err1" & a=$!
$SF stylize $S --cache "$W/cache2" udnie "$W/p2.png" "$W/q2.png" 2>"$W/err2" & b=$!
wait $a; ra=$?; wait $b; rb=$?
n=$($SF stats --cache "$W/cache2" | sed -n 's/^entries: *//p')
[ $ra = 0 ] && [ $rb = 0 ] && [ "$n" = 2 ] && pass "cache: two processes writing at once" ||
    fail "cache: two processes writing at once" "exit $ra $rb, entries $n"

# a full map: every request still succeeds
ok=1
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
    $MK 300 220 "$W/m$i.png" --seed $i
    STYLEFS_MAP_SIZE=256K STYLEFS_MAP_MAX=1M $SF stylize $S --cache "$W/cache3" --max-side 0 udnie "$W/m$i.png" "$W/mo.png" 2>>"$W/err3" || ok=0
done
n=$(STYLEFS_MAP_MAX=1M $SF stats --cache "$W/cache3" | sed -n 's/^entries: *//p')
[ $ok = 1 ] && [ "$n" -lt 12 ] && [ "$n" -gt 0 ] && ! grep -q "not cached" "$W/err3" &&
    pass "cache: full map evicts and never fails a request ($n of 12 kept)" ||
    fail "cache: full map evicts and never fails a request" "ok=$ok entries=$n $(tail -3 "$W/err3")"

# prune
out=$($SF prune $C --max-size 1 --dry-run)
n=$($SF stats $C | sed -n 's/^entries: *//p')
echo "$out" | grep -q "would remove" && [ "$n" = 5 ] && pass "prune --dry-run removes nothing" ||
    fail "prune --dry-run removes nothing" "$out; entries $n"
out=$($SF prune $C --older-than 1h)
echo "$out" | grep -q "removed 0 entries" && pass "prune --older-than keeps recent entries" || fail "prune --older-than keeps recent entries" "$out"
out=$(STYLEFS_NOW=$(( $(date +%s) + 7200 )) $SF prune $C --older-than 1h)
echo "$out" | grep -q "removed 5 entries" && pass "prune --older-than removes stale entries" || fail "prune --older-than removes stale entries" "$out"
for i in 1 2 3 4; do $SF stylize $S $C --max-side 0 udnie "$W/m$i.png" "$W/mo.png" 2>/dev/null; done
out=$($SF prune $C --max-size 300K)
n=$($SF stats $C | sed -n 's/^bytes: *\([0-9]*\).*/\1/p')
[ "$n" -le 307200 ] && pass "prune --max-size fits the cache ($out)" || fail "prune --max-size fits the cache" "$out; bytes $n"
out=$($SF prune $C --all)
n=$($SF stats $C | sed -n 's/^entries: *//p')
[ "$n" = 0 ] && pass "prune --all empties the cache" || fail "prune --all empties the cache" "$out; $n left"
before=$(stat -c %s "$W/cache3/data.mdb")
STYLEFS_MAP_MAX=1M $SF prune --cache "$W/cache3" --all >/dev/null
flock -s "$W/cache3/stylefs.lock" sleep 3 & hold=$!
sleep 0.5
expect_status "prune --compact refuses while another process has the cache" 1 $SF prune --cache "$W/cache3" --compact
expect_err "prune --compact says the cache is in use" "in use by another process"
wait $hold
out=$($SF prune --cache "$W/cache3" --compact 2>&1)
after=$(stat -c %s "$W/cache3/data.mdb")
[ "$after" -lt "$before" ] && $SF stats --cache "$W/cache3" >/dev/null && pass "prune --compact shrinks the file ($before -> $after)" ||
    fail "prune --compact shrinks the file" "$out ($before -> $after)"

# --- CLI conventions ------------------------------------------------------------------------
expect_status "no arguments: usage, exit 2" 2 $SF
expect_status "--version exits 0" 0 $SF --version
grep -q "engines: cpu" "$W/out" && pass "--version names the engines" || fail "--version names the engines" "$(cat "$W/out")"
for c in stylize styles stats prune; do expect_status "$c --help exits 0" 0 $SF $c --help; done
expect_status "stylize: bad option exits 2" 2 $SF stylize --bogus
expect_status "stylize: missing arguments exit 2" 2 $SF stylize udnie
expect_status "stylize: --quality 0 exits 2" 2 $SF stylize $S --quality 0 udnie "$W/rgb.png" "$W/o.jpg"
expect_status "stylize: --max-side abc exits 2" 2 $SF stylize $S --max-side abc udnie "$W/rgb.png" "$W/o.jpg"
expect_status "stylize: unwritable extension exits 2" 2 $SF stylize $S udnie "$W/rgb.png" "$W/o.gif"
expect_status "stylize: unknown style exits 1" 1 $SF stylize $S --no-cache nosuch "$W/rgb.png" "$W/o.png"
expect_err "stylize: unknown style message" "^stylefs: stylize: unknown style 'nosuch'"
expect_status "stylize: missing input exits 1" 1 $SF stylize $S --no-cache udnie "$W/nope.png" "$W/o.png"
expect_err "stylize: missing input message" "nope.png: No such file"
expect_status "stylize: --device cuda without a GPU engine exits 1" 1 $SF stylize $S --no-cache --device cuda udnie "$W/rgb.png" "$W/o.png"
expect_err "stylize: --device cuda message" "cuda"
expect_status "prune: nothing to do exits 2" 2 $SF prune $C
expect_status "prune: bad size exits 2" 2 $SF prune $C --max-size 12Q
expect_status "prune: bad age exits 2" 2 $SF prune $C --older-than 3y
expect_status "stats: missing cache exits 1" 1 $SF stats --cache "$W/nocache"
expect_err "stats: missing cache message" "^stylefs: stats: "

# --- styles ------------------------------------------------------------------------------------
expect_status "styles lists" 0 $SF styles $S
[ "$(wc -l <"$W/out")" = "$(ls -d "$STYLES"/*/ | wc -l)" ] && pass "styles lists one name per style" ||
    fail "styles lists one name per style" "$(cat "$W/out")"
mkdir -p "$W/st"; cp -r "$STYLES/udnie" "$STYLES/wave" "$W/st/"; rm "$W/st/wave/Variable_3"
expect_status "styles: a damaged style does not hide the others" 0 $SF styles --styles "$W/st"
cut -f1 "$W/out" | grep -qx udnie && ! grep -q wave "$W/out" && pass "styles: only the good style is listed" || fail "styles: only the good style is listed" "$(cat "$W/out")"
expect_err "styles: the damaged file is named" "wave/Variable_3"
STYLEFS_STYLES="$W/st" $SF styles >"$W/out" 2>/dev/null
cut -f1 "$W/out" | grep -qx udnie && pass "styles: \$STYLEFS_STYLES is searched" || fail "styles: \$STYLEFS_STYLES is searched" "$(cat "$W/out")"
mkdir -p "$W/xdg/stylefs/styles"; cp -r "$STYLES/wave" "$W/xdg/stylefs/styles/"
env -u STYLEFS_STYLES XDG_DATA_HOME="$W/xdg" $SF styles >"$W/out" 2>/dev/null
cut -f1 "$W/out" | grep -qx wave && pass "styles: \$XDG_DATA_HOME/stylefs/styles is searched" || fail "styles: \$XDG_DATA_HOME/stylefs/styles is searched" "$(cat "$W/out")"
# stylize's output: an existing file keeps its mode, a link is written
# through, a new file follows the umask, and no temporary file is left
mkdir -p "$W/outdir"
$MK 32 24 "$W/small.png" --seed 77
: >"$W/outdir/private.png"; chmod 600 "$W/outdir/private.png"
$MK 8 8 "$W/outdir/target.png" --seed 78; ln -s target.png "$W/outdir/link.png"
( umask 022; $SF stylize --styles "$STYLES" --no-cache udnie "$W/small.png" "$W/outdir/private.png" &&
  $SF stylize --styles "$STYLES" --no-cache udnie "$W/small.png" "$W/outdir/link.png" &&
  $SF stylize --styles "$STYLES" --no-cache udnie "$W/small.png" "$W/outdir/new.png" ) 2>"$W/err"
m=$(stat -c %a "$W/outdir/private.png" "$W/outdir/new.png" | tr '\n' ' ')
[ "$m" = "600 644 " ] && [ -s "$W/outdir/private.png" ] &&
    pass "stylize: an existing 0600 output stays 0600; a new one gets 0666 less the umask" ||
    fail "stylize keeps the output's mode" "modes $m; $(cat "$W/err")"
[ -L "$W/outdir/link.png" ] && cmp -s "$W/outdir/target.png" "$W/outdir/new.png" &&
    pass "stylize: an output that is a symlink is written through (the link stays, its target has the image)" ||
    fail "stylize writes through an output symlink" "$(ls -l "$W/outdir")"
[ "$(ls "$W/outdir" | tr '\n' ' ')" = "link.png new.png private.png target.png " ] &&
    pass "stylize: no temporary file left beside the output" || fail "stylize leaves no temporary file" "$(ls "$W/outdir")"
finish
