#!/bin/sh
# Build the libFuzzer targets (fuzz_msg: the protocol decoder; fuzz_journal:
# the journal reader) with clang under AddressSanitizer and
# UndefinedBehaviorSanitizer in their own build dir, check that the seeds
# are what they claim, and fuzz each target for SECONDS (default 30).
# New inputs go to a scratch dir, never into the seed corpora in tests/fuzz.
# Exit status 0 if every target ran its time without a finding; without
# clang it says so and exits 0 (nothing was run).
#
#   tests/fuzz/run-fuzz.sh [SECONDS]
#   QJOB_FUZZ_BUILD=dir   build dir (default build-fuzz-run at the top of the tree)
set -u
SECONDS_EACH=${1:-30}
case $SECONDS_EACH in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2;; esac
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
BUILD=${QJOB_FUZZ_BUILD:-$ROOT/build-fuzz-run}
FUZZ=$ROOT/tests/fuzz

if ! command -v clang >/dev/null 2>&1; then
    echo "run-fuzz: clang not found: fuzzing skipped (apt-get install clang)"
    exit 0
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qjob-fuzz-XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
if [ ! -d "$BUILD" ]; then
    CC=clang meson setup "$BUILD" -Dfuzz=true >"$WORK/setup.log" 2>&1 ||
        { cat "$WORK/setup.log"; echo "run-fuzz: meson setup failed"; rm -rf "$BUILD"; exit 1; }
fi
ninja -C "$BUILD" tests/fuzz/fuzz_msg tests/fuzz/fuzz_journal >"$WORK/build.log" 2>&1 ||
    { tail -40 "$WORK/build.log"; echo "run-fuzz: build failed"; exit 1; }
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0

# The seeds: every frame decodes; every journal seed not named damaged-*
# reads back intact.
QJ_FUZZ_EXPECT_VALID=1 "$BUILD/tests/fuzz/fuzz_msg" -runs=0 "$FUZZ/corpus_msg" \
    >"$WORK/seeds-msg.log" 2>&1 || { cat "$WORK/seeds-msg.log"; echo "run-fuzz: fuzz_msg seeds"; rc=1; }
# shellcheck disable=SC2046
QJ_FUZZ_EXPECT_VALID=1 "$BUILD/tests/fuzz/fuzz_journal" -runs=0 \
    $(ls -d "$FUZZ"/corpus_journal/* | grep -v '/damaged-') \
    >"$WORK/seeds-journal.log" 2>&1 || { cat "$WORK/seeds-journal.log"; echo "run-fuzz: fuzz_journal seeds"; rc=1; }

run() { # name, seed corpus, extra libFuzzer options...
    name=$1; seeds=$2; shift 2
    mkdir -p "$WORK/$name"
    echo "== $name: ${SECONDS_EACH}s"
    # The first corpus dir is where libFuzzer writes: the scratch one.
    if "$BUILD/tests/fuzz/$name" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$WORK/$name-" -print_final_stats=1 "$@" "$WORK/$name" "$seeds" \
        >"$WORK/$name.log" 2>&1; then
        grep -E "^stat::number_of_executed_units|^Done" "$WORK/$name.log" | tail -2
    else
        tail -60 "$WORK/$name.log"
        for a in "$WORK/$name"-*; do
            [ -e "$a" ] && cp "$a" "$ROOT/" && echo "run-fuzz: $name found $(basename "$a") (copied to $ROOT)"
        done
        rc=1
    fi
}
run fuzz_msg "$FUZZ/corpus_msg" -dict="$FUZZ/msg.dict"
run fuzz_journal "$FUZZ/corpus_journal"

if [ $rc -eq 0 ]; then echo "run-fuzz: ok"; else echo "run-fuzz: FAILED"; fi
exit $rc
