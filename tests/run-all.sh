#!/bin/sh
# Runs every qjob test: the whole suite in a normal build and again under
# AddressSanitizer + UndefinedBehaviorSanitizer, and the unit tests under
# valgrind, and fuzzes the decoders for a bounded time.  Ends with one
# line "N passed, N failed" (all runs added up).
# Exit status 0 only if every test passed.
#
#   tests/run-all.sh            all of it
#   QJOB_QUICK=1 tests/run-all.sh   normal build only (for a fast check)
#   QJOB_FUZZ_SECONDS=N             fuzz each decoder N s (default 30)
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
: > "$ROOT/.test-summary"
rc=0

run_suite() { # name builddir meson-setup-args... ; then meson test args in $TEST_ARGS
    name=$1; dir=$2; shift 2
    echo "== $name: configure and build ($dir)"
    if [ ! -d "$dir" ]; then
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; echo "$name: setup failed"; echo "0 0 1 $name" >>"$ROOT/.test-summary"; return 1; }
    fi
    if ! meson compile -C "$dir" >"$dir.build.log" 2>&1; then
        tail -50 "$dir.build.log"; echo "$name: build failed"
        echo "0 0 1 $name" >>"$ROOT/.test-summary"; return 1
    fi
    if grep -q "warning:" "$dir.build.log"; then
        grep "warning:" "$dir.build.log" | sort -u | head -20
        echo "$name: the build has warnings (counted as a failure)"
        echo "0 0 1 $name-warnings" >>"$ROOT/.test-summary"
    fi
    echo "== $name: test"
    # shellcheck disable=SC2086
    meson test -C "$dir" --print-errorlogs $TEST_ARGS
    # meson names the log after a --wrapper (testlog-valgrind-wrap.json): take the newest.
    log=$(ls -t "$dir"/meson-logs/testlog*.json 2>/dev/null | head -n 1)
    /usr/bin/python3 "$ROOT/tests/summarize.py" "${log:-$dir/meson-logs/testlog.json}" "$name" >>"$ROOT/.test-summary"
}

TEST_ARGS="--num-processes 2"
run_suite normal build || rc=1

if [ -z "${QJOB_QUICK:-}" ]; then
    TEST_ARGS="--num-processes 2 --timeout-multiplier 3"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_suite asan build-asan -Db_sanitize=address,undefined -Db_lundef=false || rc=1
    TEST_ARGS="--suite unit --num-processes 2 --timeout-multiplier 10 --wrapper $ROOT/tests/valgrind-wrap.sh"
    run_suite valgrind build || rc=1

    # The decoders (protocol frames, journal records) under libFuzzer with
    # ASan+UBSan, a bounded time each.
    echo "== fuzz: ${QJOB_FUZZ_SECONDS:-30} s per target"
    if tests/fuzz/run-fuzz.sh "${QJOB_FUZZ_SECONDS:-30}"; then
        echo "1 0 0 fuzz" >>"$ROOT/.test-summary"
    else
        echo "0 1 0 fuzz" >>"$ROOT/.test-summary"; rc=1
    fi
fi

echo "== summary"
/usr/bin/python3 "$ROOT/tests/summarize.py" --total "$ROOT/.test-summary"
total_failed=$(awk '{f+=$2+$3} END {print f+0}' "$ROOT/.test-summary")
[ "$total_failed" -eq 0 ] || rc=1
exit $rc
