#!/bin/sh
# run_tests.sh — runs every test program of a build and sums the results.
# Usage: sh tests/run_tests.sh BUILD_DIR. Check suites print their own
# summary lines; shell tests (tests/test_*.sh) count as one test each.
# The last line is always "N passed, N failed".
build=${1:-build}
QLAB_BUILD=$build
QLAB_BIN=$build/qlab
QLAB_PLUGIN_BUILD=$build/plugins
QLAB_TEST_PLUGINS=$build/tests/plugins
QLAB_SHARED_DATA=${QLAB_SHARED_DATA:-../shared/data}
export QLAB_BUILD QLAB_BIN QLAB_PLUGIN_BUILD QLAB_TEST_PLUGINS QLAB_SHARED_DATA
# Tests never touch the user's database or plugin folders.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qlab-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
XDG_DATA_HOME=$tmp/data
XDG_CACHE_HOME=$tmp/cache
QLAB_TMP=$tmp
export XDG_DATA_HOME XDG_CACHE_HOME QLAB_TMP
unset QLAB_PLUGIN_PATH
if [ -n "$QLAB_SANITIZE" ]; then
    # ncurses and OpenBLAS keep some memory until exit by design.
    LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
    ASAN_OPTIONS="abort_on_error=0:detect_leaks=1"
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export LSAN_OPTIONS ASAN_OPTIONS UBSAN_OPTIONS
fi
[ -d "$QLAB_SHARED_DATA" ] || echo "SKIP: $QLAB_SHARED_DATA is absent: the real-model tests are skipped"

passed=0
failed=0
for t in "$build"/tests/check_*; do
    [ -x "$t" ] || continue
    out=$tmp/out.txt
    "$t" >"$out" 2>&1
    rc=$?
    cat "$out"
    # Check's summary: "NN%: Checks: C, Failures: F, Errors: E"
    line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$out" | tail -n 1)
    if [ -n "$line" ]; then
        c=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
        f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
        e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
        passed=$((passed + c - f - e))
        failed=$((failed + f + e))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && [ "$e" -eq 0 ]; then
            echo "FAIL: $t exited with $rc"
            failed=$((failed + 1))
        fi
    else
        echo "FAIL: $t printed no Check summary (exit $rc)"
        failed=$((failed + 1))
    fi
done
for t in tests/test_*.sh; do
    [ -f "$t" ] || continue
    if sh "$t" "$build"; then
        echo "PASS: $t"
        passed=$((passed + 1))
    else
        rc=$?
        if [ "$rc" -eq 77 ]; then
            echo "SKIP: $t"
        else
            echo "FAIL: $t (exit $rc)"
            failed=$((failed + 1))
        fi
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
