#!/bin/sh
# Builds qjob (if needed), starts a private broker and a worker with 2
# processes, submits a few jobs through qclient, shows their results and
# the broker's figures, then stops what it started.
set -eu
cd "$(dirname "$0")/.."
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null   # incremental: a no-op when up to date
B=build/server/qbroker W=build/server/qworker C=build/client/qclient
RUN=$(mktemp -d /tmp/qjob-quickstart.XXXXXX)
BROKER_PID= WORKER_PID=
cleanup() {
    [ -n "$WORKER_PID" ] && kill "$WORKER_PID" 2>/dev/null && wait "$WORKER_PID" 2>/dev/null
    [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
    rm -rf "$RUN"
}
trap cleanup EXIT INT TERM

$B --bind 'tcp://127.0.0.1:*' --endpoint-file "$RUN/endpoint" --data-dir "$RUN/data" \
   --log-level warn 2>"$RUN/broker.log" &
BROKER_PID=$!
i=0; while [ ! -s "$RUN/endpoint" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
QJOB_BROKER=$(head -n1 "$RUN/endpoint"); export QJOB_BROKER
echo "broker:  $QJOB_BROKER (pid $BROKER_PID)"
$W --procs 2 --coros 16 --log-level warn 2>"$RUN/worker.log" &
WORKER_PID=$!
echo "workers: 2 processes x 16 coroutines (pid $WORKER_PID)"
echo

show() { printf '$ qclient %s\n' "$*"; "$C" "$@" || echo "(exit code $?)"; echo; }
show submit echo '{"hello": "world"}'
show submit pi '{"samples": 10000000}'
show submit pi_split '{"samples": 20000000, "parts": 16}'
show submit fail '{"message": "this job fails on purpose"}'
ID=$("$C" submit sleep '{"ms": 200}' --detach)
show await "$ID"
printf '$ seq 5 | qclient map echo  (one JSON args object per line)\n'
for n in 1 2 3 4 5; do echo "{\"n\": $n}"; done | "$C" map echo --ordered
echo
show stats
