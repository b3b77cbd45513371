#!/bin/bash
# peers.sh -- qjob against beanstalkd and gearmand on this machine, on the
# same patterns, in one go:
#
#   throughput   100,000 jobs of 16 bytes, 2 worker processes, end to end
#                (qjob, gearmand: until every result is back at the client;
#                beanstalkd, which returns no results: until every job is
#                deleted by a worker)
#   latency      single-job round trips, 1 worker: p50 and p99 (10,000
#                after 500 untimed)
#
# It installs the peers (Debian packages beanstalkd, gearman-job-server,
# libgearman-dev, gearman-tools: root needed for that), compiles its own
# load generators (bs_bench.c: the beanstalkd text protocol; gm_bench.c:
# libgearman) into a temp dir with -Wall -Wextra -Werror, starts each
# server on 127.0.0.1 on a free port, runs, and stops it by pid.  qjob
# runs as `qclient bench ... --spawn` (its own broker and workers).
# Every run is under `timeout`.  Each figure is the median of --runs runs.
# Prints a table with the ratios qjob/peer.  Not part of the test suite.
#
# usage: tests/bench/peers.sh [--build DIR] [--qclient PATH] [--runs N]
#                             [--jobs N] [--rounds N] [--no-install]
#                             [--qjob-args "ARGS"]
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=${QJOB_BUILD_DIR:-$SRC/build}
QCLIENT=""
RUNS=3
JOBS=100000
ROUNDS=10000
WARMUP=500
INSTALL=1
QJOB_ARGS=""
RUN_TIMEOUT=240
PY=/usr/bin/python3
PACKAGES=(beanstalkd gearman-job-server libgearman-dev gearman-tools)

die() { echo "peers.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --qclient) QCLIENT=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --qjob-args) QJOB_ARGS=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
QCLIENT=${QCLIENT:-$BUILD/client/qclient}
[ -x "$QCLIENT" ] || die "no qclient at $QCLIENT: build qjob first (meson setup build && ninja -C build), or give --build DIR / --qclient PATH"
"$QCLIENT" bench --help >/dev/null 2>&1 || die "$QCLIENT has no 'bench' command"
[ -x "$PY" ] || die "$PY is needed (to find free ports and read qclient's JSON)"

# ------------------------------------------------------------ install

missing=""
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    [ "$INSTALL" = 1 ] || die "not installed:$missing (drop --no-install to install them)"
    if [ "$(id -u)" != 0 ]; then
        die "the peers are not installed (missing:$missing) and installing them needs root: run
    sudo apt-get install -y ${PACKAGES[*]}
or run this script as root."
    fi
    echo "peers.sh: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y "${PACKAGES[@]}" >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y "${PACKAGES[@]}" >/dev/null; } ||
        die "apt-get install ${PACKAGES[*]} failed"
fi
BEANSTALKD=$(command -v beanstalkd || echo /usr/bin/beanstalkd)
GEARMAND=$(command -v gearmand || echo /usr/sbin/gearmand)
[ -x "$BEANSTALKD" ] || die "beanstalkd not found"
[ -x "$GEARMAND" ] || die "gearmand not found"

# ------------------------------------------------------------ set-up

TMP=$(mktemp -d "${TMPDIR:-/tmp}/qjob-peers-XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "peers.sh: compiling the load generators in $TMP" >&2
gcc -O2 -Wall -Wextra -Werror -o "$TMP/bs_bench" "$HERE/bs_bench.c" ||
    die "bs_bench.c did not compile cleanly"
gcc -O2 -Wall -Wextra -Werror -o "$TMP/gm_bench" "$HERE/gm_bench.c" -lgearman ||
    die "gm_bench.c did not compile cleanly"

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {   # PORT PID: until something listens there (10 s)
    for _ in $(seq 1 200); do
        kill -0 "$2" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

stop() {   # PID: stop one server we started, by pid
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local keep=()
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

field() {   # KEY LINE: the value of KEY=value in a generator's output line
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

median() {   # values...: their median
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) exit 1
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# One run of a generator against a fresh server.  KIND beanstalkd|gearmand,
# then the generator's arguments; its output line goes to OUT.  (Not run in
# a $(...) subshell, so that the server is this shell's child: cleanup
# and wait know its pid.)
OUT=""
peer_run() {
    local kind=$1; shift
    local port pid gen
    port=$(free_port)
    if [ "$kind" = beanstalkd ]; then
        "$BEANSTALKD" -l 127.0.0.1 -p "$port" >"$TMP/beanstalkd.log" 2>&1 &
        pid=$!
        gen=$TMP/bs_bench
    else
        "$GEARMAND" -L 127.0.0.1 -p "$port" -l "$TMP/gearmand.log" -P "$TMP/gearmand.pid" \
            --verbose ERROR >"$TMP/gearmand.out" 2>&1 &
        pid=$!
        gen=$TMP/gm_bench
    fi
    PIDS+=("$pid")
    wait_port "$port" "$pid" || { stop "$pid"; die "$kind did not start (see $TMP)"; }
    local rc=0
    OUT=$(timeout "$RUN_TIMEOUT" "$gen" -p "$port" "$@") || rc=$?
    stop "$pid"
    [ "$rc" = 0 ] || die "$kind run '$*' failed (exit $rc)"
}

# One run of qclient bench (with --spawn it starts and stops its own
# broker and workers; baseline starts qfwd); the figure the Python expression picks goes to OUT.
qjob_run() {   # PYTHON_EXPR ARGS...
    local expr=$1; shift
    local json
    # One qjob run per round, as for the peers (--runs gives the medians).
    # shellcheck disable=SC2086
    json=$(TMPDIR=$TMP timeout "$RUN_TIMEOUT" "$QCLIENT" bench "$@" --repeat 1 --json \
        --timeout "$RUN_TIMEOUT" $QJOB_ARGS) || die "qclient bench $* failed"
    OUT=$(echo "$json" | "$PY" -c "import json, sys
doc = json.load(sys.stdin)
rows = {t['name']: t['rows'] for t in doc['tables']}
print($expr)")
}

# ------------------------------------------------------------ runs

declare -A R
for what in qjob_tp bs_tp gm_tp qjob_p50 qjob_p99 bs_p50 bs_p99 gm_p50 gm_p99 fwd_p50 fwd_p99; do
    R[$what]=""
done

echo "peers.sh: $RUNS run(s) of each; load average now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for run in $(seq 1 "$RUNS"); do
    echo "peers.sh: run $run/$RUNS" >&2
    qjob_run "rows['throughput'][0]['jobs_per_s']" throughput --spawn --procs 2 --jobs "$JOBS" \
        --payload 16
    R[qjob_tp]+=" $OUT"
    peer_run beanstalkd pipeline -n "$JOBS" -s 16 -w 2 -b 100
    R[bs_tp]+=" $(field jobs_per_s "$OUT")"
    peer_run gearmand pipeline -n "$JOBS" -s 16 -w 2 -b 100
    R[gm_tp]+=" $(field jobs_per_s "$OUT")"

    qjob_run "'%s %s' % (rows['latency'][0]['us'], rows['latency'][2]['us'])" latency \
        --spawn --procs 1 --rounds "$ROUNDS" --warmup "$WARMUP" --payload 16
    R[qjob_p50]+=" ${OUT% *}"
    R[qjob_p99]+=" ${OUT#* }"
    peer_run beanstalkd latency -n "$ROUNDS" -W "$WARMUP" -s 16
    R[bs_p50]+=" $(field p50_us "$OUT")"
    R[bs_p99]+=" $(field p99_us "$OUT")"
    peer_run gearmand latency -n "$ROUNDS" -W "$WARMUP" -s 16
    R[gm_p50]+=" $(field p50_us "$OUT")"
    R[gm_p99]+=" $(field p99_us "$OUT")"
    # The floor of any broker on ZeroMQ here: qfwd forwards without
    # bookkeeping (its throughput and batch runs are kept short).
    qjob_run "'%s %s' % (rows['latency'][0]['us'], rows['latency'][2]['us'])" baseline \
        --procs 1 --rounds "$ROUNDS" --warmup "$WARMUP" --payload 16 --jobs 1000 --k-max 1
    R[fwd_p50]+=" ${OUT% *}"
    R[fwd_p99]+=" ${OUT#* }"
done

# ------------------------------------------------------------ table

m() { local v; read -ra v <<<"${R[$1]}"; median "${v[@]}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
row() {   # LABEL QJOB BS GM
    printf '%-34s %10.1f %11.1f %10.1f %10s %10s\n' "$1" "$2" "$3" "$4" \
        "$(ratio "$2" "$3")" "$(ratio "$2" "$4")"
}

echo
echo "qjob against beanstalkd $(dpkg-query -W -f='${Version}' beanstalkd) and gearmand" \
     "$(dpkg-query -W -f='${Version}' gearman-job-server), median of $RUNS run(s)"
printf '%-34s %10s %11s %10s %10s %10s\n' "pattern" "qjob" "beanstalkd" "gearmand" \
    "qjob/bs" "qjob/gm"
printf '%s\n' "------------------------------------------------------------------------------------------"
row "throughput, jobs/s (higher: better)" "$(m qjob_tp)" "$(m bs_tp)" "$(m gm_tp)"
row "latency p50, us (lower: better)" "$(m qjob_p50)" "$(m bs_p50)" "$(m gm_p50)"
row "latency p99, us (lower: better)" "$(m qjob_p99)" "$(m bs_p99)" "$(m gm_p99)"
echo
echo "throughput: $JOBS jobs of 16 bytes, 2 worker processes; qjob: qclient bench throughput" \
     "--spawn (window 1000${QJOB_ARGS:+, $QJOB_ARGS}); beanstalkd: 100 puts per write, workers" \
     "reserve+delete; gearmand: foreground jobs, 100 per run_tasks, echo workers."
echo "the transport's floor: qfwd, a bare ZeroMQ ROUTER forwarder with an echo worker, same" \
     "round trips: p50 $(m fwd_p50) us, p99 $(m fwd_p99) us (qjob/qfwd p50 $(ratio "$(m qjob_p50)" \
     "$(m fwd_p50)"), beanstalkd/qfwd p50 $(ratio "$(m bs_p50)" "$(m fwd_p50)"))"
echo "latency: $ROUNDS round trips after $WARMUP, 1 worker; beanstalkd: put -> worker" \
     "reserve+delete+put to a reply tube -> client reserve+delete; gearmand: gearman_client_do."
echo "all runs: $(printf '%s=[%s] ' qjob_tp "${R[qjob_tp]# }" bs_tp "${R[bs_tp]# }" gm_tp "${R[gm_tp]# }")"
