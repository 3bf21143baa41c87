# t_harness.sh: the harness itself (tests/run.sh) can fail: a test program
# that crashes after a PASS, and a script that stops before its end, each
# fail the suite and make it exit non-zero.
W=$1
. tests/lib.sh

if [ -n "${HARNESS_NESTED:-}" ]; then finish; fi    # never recurse
cat >"$W/crash.sh" <<'EOS'
echo "PASS a check that passed before the crash"
echo "END crash.sh"     # so that only its exit status tells
kill -SEGV $$
EOS
cat >"$W/early.sh" <<'EOS'
echo "PASS a check that passed before the early exit"
exit 0
EOS
cat >"$W/good.sh" <<'EOS'
echo "PASS the one check"
echo "END good.sh"
EOS
for case in crash early good; do
    case $case in
    crash) what="a script that crashes after a PASS" ;;
    early) what="a script that exits 0 before its end" ;;
    good) what="a script that ends well" ;;
    esac
    HARNESS_NESTED=1 TESTS="$W/$case.sh" TMPDIR=$W sh tests/run.sh >"$W/$case.out" 2>&1
    rc=$?
    last=$(tail -n 1 "$W/$case.out")
    [ "$case" = good ] && last=$(grep -E '^[0-9]+ passed' "$W/$case.out")
    case $case in
    good) want="1 passed, 0 failed, 0 skipped" wrc=0 ;;
    *) want="1 passed, 1 failed, 0 skipped" wrc=1 ;;
    esac
    if [ "$rc" = "$wrc" ] && grep -qx "$want" "$W/$case.out"; then
        pass "harness: $what is counted ($want, exit $rc)"
    else
        fail "harness: $what" "exit $rc (wanted $wrc), output: $(tr '\n' '|' <"$W/$case.out" | head -c 400)"
    fi
done
finish
