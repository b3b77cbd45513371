#!/usr/bin/python3
"""Write the seed corpus for fuzz_msg: one valid frame per command shape.

The frames are built here from PROTOCOL.md with Python's msgpack, not with
the C encoder, so they double as an interoperability check: every seed must
decode in C (QJ_FUZZ_EXPECT_VALID=1 fuzz_msg -runs=0 corpus_msg checks it).

Usage: /usr/bin/python3 tests/fuzz/gen_corpus.py [OUTDIR]   (default: corpus_msg next to this file)
Rerun after adding a command or key (PROTOCOL.md §9, step 4).
"""
import os
import sys

import msgpack

HELLO, WELCOME, HEARTBEAT, BYE, ERROR = 0x01, 0x02, 0x03, 0x04, 0x05
SUBMIT, ACCEPTED, AWAIT, RESULTS, STATUS, STATUS_REP = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15
CANCEL, CANCEL_REP, PROGRESS = 0x16, 0x17, 0x18
STATS, STATS_REP, DEAD, DEAD_REP, REQUEUE, REQUEUE_REP = 0x20, 0x21, 0x22, 0x23, 0x24, 0x25
JOBS, CREDIT, TOUCH = 0x30, 0x31, 0x32

ARGS = msgpack.packb({"x": 1, "list": [1, 2.5, "three", None, True], "b": b"\x00\x01"})
TIMES = [1700000000000000, 1700000000000100, 1700000000000200, 1700000000000300, 1700000000000400]

SUBMIT_JOB = {"ref": 1, "task": "echo", "args": ARGS, "q": "default", "pri": -5, "timeout": 30000,
              "retries": 3, "backoff": 250, "at": 1700000000000000, "key": "idem-1", "parent": 9,
              "ts": 1700000000000000, "detach": False, "progress": True}
BROKER_JOB = {"id": 1234567, "task": "echo", "args": ARGS, "q": "default", "attempt": 1,
              "timeout": 30000, "parent": 9, "ts": 1700000000000000}
RESULT = {"id": 1234567, "ref": 1, "st": 0, "val": ARGS, "wk": "host:77/0", "att": 1, "t": TIMES}
FAILED = {"id": 1234568, "st": 1, "err": "ValueError: boom", "wk": "host:77/1", "att": 3}
STATUS_ITEM = dict(RESULT, state=3, q="default", task="echo", prog=[3, 10, "a third"])
QUEUED_ITEM = {"id": 1234569, "state": 0, "q": "default", "task": "echo"}
QSTAT = {"name": "default", "depth": 5, "delayed": 1, "running": 2, "workers": 1, "submitted": 100,
         "done": 90, "failed": 2, "retried": 3, "dead": 1, "comm_us": 12345, "compute_us": 67890,
         "b_jobs": [2, 0, 0, 0, 0, 0, 88], "b_comm_us": [345, 0, 0, 0, 0, 0, 12000],
         "b_compute_us": [890, 0, 0, 0, 0, 0, 67000]}
WSTAT = {"name": "host:77/0", "slots": 4, "busy": 2, "done": 88, "idle_ms": 12}

SEEDS = {
    "hello_client": (HELLO, {"role": 0, "cid": bytes(range(16)), "name": "host:42"}),
    "hello_worker": (HELLO, {"role": 1, "name": "host:77/0", "queues": ["default", "gpu"],
                             "credit": 4, "hb": 1000}),
    "hello_replaces": (HELLO, {"role": 1, "name": "host:78/0", "replaces": "host:77/0",
                               "timedout": [5, 9]}),
    "welcome": (WELCOME, {"hb": 1000, "live": 3, "maxmsg": 8388608, "name": "broker"}),
    "heartbeat": (HEARTBEAT, {}),
    "bye_drain": (BYE, {"drain": True}),
    "error": (ERROR, {"code": 4, "text": "submit: key 'jobs' is required", "about": SUBMIT, "rid": 7}),
    "submit": (SUBMIT, {"jobs": [SUBMIT_JOB, {"ref": 2, "task": "t"}]}),
    "accepted": (ACCEPTED, {"acks": [[1, 1234567], [2, 0, 10, "queue 'default' is full"]]}),
    "await": (AWAIT, {"ids": [1234567, 1, 2 ** 64 - 1]}),
    "results_worker": (RESULTS, {"results": [RESULT, FAILED], "credit": 2}),
    "status": (STATUS, {"rid": 1, "ids": [1234567, 1234569]}),
    "status_rep": (STATUS_REP, {"rid": 1, "jobs": [STATUS_ITEM, QUEUED_ITEM]}),
    "cancel": (CANCEL, {"rid": 2, "ids": [1234569]}),
    "cancel_worker": (CANCEL, {"ids": [1234567]}),
    "cancel_rep": (CANCEL_REP, {"rid": 2, "items": [[1234569, 0], [1234567, 1], [5, 3]]}),
    "progress": (PROGRESS, {"id": 1234567, "done": 3, "total": 10, "note": "a third"}),
    "stats": (STATS, {"rid": 3}),
    "stats_rep": (STATS_REP, {"rid": 3, "uptime": 1000, "clients": 1, "workers": 1, "submitted": 100,
                              "done": 90, "failed": 2, "retried": 3, "lost": 0, "cancelled": 1,
                              "bad": 4, "bad_by": {"body": 3, "limit": 1}, "rejected": 0, "kept": 90,
                              "rss": 10485760, "queues": [QSTAT], "wlist": [WSTAT]}),
    "stats_rep_metrics": (STATS_REP, {"rid": 3, "uptime": 1000, "queues": [
        dict(QSTAT, dispatched=12, wait_us=3500, wait=[5, 4, 3, 0])], "wlist": [WSTAT],
        "slots": 8, "busy": 2, "dispatched": 12, "jbytes": 4096, "jdisk": 8192, "fsyncs": 7,
        "fsync_us": 1400, "wait_le": [100, 1000, 10000]}),
    "dead": (DEAD, {"rid": 4, "q": "default", "limit": 10}),
    "dead_rep": (DEAD_REP, {"rid": 4, "jobs": [dict(FAILED, state=4, q="default", task="echo")]}),
    "requeue": (REQUEUE, {"rid": 5, "ids": [1234568]}),
    "requeue_rep": (REQUEUE_REP, {"rid": 5, "items": [[1234568, 0]]}),
    "jobs": (JOBS, {"jobs": [BROKER_JOB, {"id": 2, "task": "t", "q": "gpu", "attempt": 2}]}),
    "credit": (CREDIT, {"credit": 1}),
    "touch": (TOUCH, {"ids": [1234567]}),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus_msg")
    os.makedirs(out, exist_ok=True)
    for name, (cmd, body) in sorted(SEEDS.items()):
        frame = b"QJ" + bytes([1, cmd]) + msgpack.packb(body, use_bin_type=True)
        with open(os.path.join(out, name), "wb") as f:
            f.write(frame)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
