"""qclient and libqjob against real qbroker / qworker processes.

Every exit code of the qclient contract, every command, the example
client, and the library calls qclient does not reach (wait-any order,
await timeouts, a broker restart under pending handles) through ctypes
on libqjob.so, in a child Python so that an ASan build can be preloaded.
One test checks qclient's wire behaviour against a fake broker written
from the spec (wire.py)."""
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import wire  # noqa: E402
import zmq  # noqa: E402
from harness import (EXIT_CANCELLED, EXIT_FAILED, EXIT_JOB_TIMEOUT, EXIT_OK,  # noqa: E402
                     EXIT_REFUSED, EXIT_TIMEOUT, EXIT_UNKNOWN, EXIT_UNREACHABLE, EXIT_USAGE)

LIBQJOB = os.path.join(harness.BUILD, "client", "libqjob.so")

# A child Python that drives libqjob.so: `lib` and helpers are defined,
# QJOB_BROKER is in the environment; the scenario follows.
CTYPES_PRELUDE = r'''
import ctypes, json, os, sys, time
lib = ctypes.CDLL(os.environ["LIBQJOB"])
libc = ctypes.CDLL(None)
lib.qj_client_new.restype = ctypes.c_void_p
lib.qj_client_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
lib.qj_client_ready.argtypes = [ctypes.c_void_p, ctypes.c_int]
lib.qj_submit_json.restype = ctypes.c_void_p
lib.qj_submit_json.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                               ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
lib.qj_attach.restype = ctypes.c_void_p
lib.qj_attach.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
lib.qj_accepted.argtypes = [ctypes.c_void_p, ctypes.c_int]
lib.qj_await.argtypes = [ctypes.c_void_p, ctypes.c_int]
lib.qj_gather.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
lib.qj_wait_any.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
lib.qj_job_status.argtypes = [ctypes.c_void_p]
lib.qj_job_id.restype = ctypes.c_uint64
lib.qj_job_id.argtypes = [ctypes.c_void_p]
lib.qj_job_value_json.restype = ctypes.c_void_p
lib.qj_job_value_json.argtypes = [ctypes.c_void_p]
lib.qj_job_free.argtypes = [ctypes.c_void_p]
lib.qj_client_destroy.argtypes = [ctypes.c_void_p]
libc.free.argtypes = [ctypes.c_void_p]
err = ctypes.create_string_buffer(512)

def client():
    c = lib.qj_client_new(None, err, 512)
    assert c, err.value
    assert lib.qj_client_ready(c, 5000) == 0, "no WELCOME"
    return ctypes.c_void_p(c)

def submit(c, task, args):
    j = lib.qj_submit_json(c, task.encode(), json.dumps(args).encode(), None, err, 512)
    assert j, err.value
    return ctypes.c_void_p(j)

def value(j):
    p = lib.qj_job_value_json(j)
    if not p:
        return None
    s = ctypes.string_at(p).decode()
    libc.free(p)
    return json.loads(s)

def free(*jobs):
    for j in jobs:
        lib.qj_job_free(ctypes.byref(j))

def out(**kw):
    print(json.dumps(kw), flush=True)
'''


def _asan_preload():
    """The sanitizer runtimes libqjob.so needs preloaded into Python, if any."""
    try:
        ldd = subprocess.run(["ldd", LIBQJOB], capture_output=True, text=True).stdout
    except OSError:
        return ""
    libs = [line.split("=>")[1].split()[0] for line in ldd.splitlines()
            if "=>" in line and ("libasan" in line or "libubsan" in line)]
    return " ".join(libs)


class ClientTest(harness.ClusterTest):

    def start(self, procs=1, coros=1, broker_args=()):
        self.c.start_broker(*broker_args)
        if procs:
            self.c.start_worker("--coros", str(coros), procs=procs,
                                expect_slots=procs * coros)

    def lib_scenario(self, code, timeout=60):
        """Run a ctypes scenario in a child Python; returns its JSON lines."""
        p = self.lib_start(code)
        stdout, stderr = p.communicate(timeout=timeout)
        if p.returncode != 0:
            raise AssertionError("scenario failed (%d):\n%s\n%s" % (p.returncode, stdout, stderr))
        return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]

    def lib_start(self, code):
        env = dict(self.c.env)
        env["LIBQJOB"] = LIBQJOB
        pre = _asan_preload()
        if pre:
            env["LD_PRELOAD"] = pre
            env["ASAN_OPTIONS"] = "detect_leaks=0"
        return subprocess.Popen([sys.executable, "-c", CTYPES_PRELUDE + code], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    # ------------------------------------------------------------ submit

    def test_submit_await_round_trip(self):
        self.start()
        r = self.c.qclient("submit", "echo", '{"a": [1, 2.5, "x"], "b": null}', check=EXIT_OK)
        self.assertEqual(json.loads(r.stdout), {"a": [1, 2.5, "x"], "b": None})
        r = self.c.qclient("--json", "submit", "echo", "[7]", check=EXIT_OK)
        o = json.loads(r.stdout)
        self.assertEqual(o["status"], "ok")
        self.assertEqual(o["value"], [7])
        self.assertIsNone(o["error"])
        self.assertEqual(o["attempts"], 1)
        self.assertTrue(o["worker"])
        t = o["times"]
        order = [t[k] for k in ("submitted", "queued", "dispatched", "started", "finished",
                                "delivered")]
        self.assertTrue(all(order), t)
        self.assertEqual(order, sorted(order), t)
        # detach, then await by id from another process
        r = self.c.qclient("submit", "echo", '"later"', "--detach", check=EXIT_OK)
        jid = int(r.stdout)
        r = self.c.qclient("await", str(jid), check=EXIT_OK)
        self.assertEqual(json.loads(r.stdout),
                         {"id": jid, "status": "ok", "value": "later", "error": None})

    def test_pi_with_two_worker_processes(self):
        self.start(procs=2)
        r = self.c.qclient("submit", "pi", '{"samples": 10000000}', check=EXIT_OK)
        self.assertLess(abs(float(r.stdout) - math.pi), 0.01)

    def test_thousand_detached_awaited_from_another_process(self):
        self.start(procs=2, coros=4)
        lines = "".join(json.dumps({"i": i, "s": "x" * (i % 7)}) + "\n" for i in range(1000))
        r = self.c.qclient("map", "echo", "--detach", input=lines, check=EXIT_OK)
        ids = [int(x) for x in r.stdout.split()]
        self.assertEqual(len(ids), 1000)
        self.assertEqual(len(set(ids)), 1000)
        r = self.c.qclient("await", *[str(i) for i in ids], "--timeout", "60", check=EXIT_OK)
        got = [json.loads(x) for x in r.stdout.splitlines()]
        self.assertEqual([g["id"] for g in got], ids)
        for i, g in enumerate(got):
            self.assertEqual(g["status"], "ok")
            self.assertEqual(g["value"], {"i": i, "s": "x" * (i % 7)})

    # -------------------------------------------------------- exit codes

    def test_exit_codes(self):
        self.start()
        r = self.c.qclient("submit", "fail", '{"message": "it broke"}', check=EXIT_FAILED)
        self.assertIn("it broke", r.stderr)
        r = self.c.qclient("submit", "echo", '{"a": nope}', check=EXIT_USAGE)
        self.assertIn("qclient: bad JSON args at line 1, column", r.stderr)
        self.c.qclient("submit", "echo", "--no-such-option", check=EXIT_USAGE)
        self.c.qclient("frobnicate", check=EXIT_USAGE)
        self.c.qclient("await", "12x", check=EXIT_USAGE)
        self.c.qclient("stats", "--ordered", check=EXIT_USAGE)
        self.c.qclient("submit", "x" * 200, check=EXIT_USAGE)
        t0 = time.monotonic()
        r = self.c.qclient("submit", "sleep", '{"ms": 5000}', "--timeout", "0.3",
                           check=EXIT_TIMEOUT)
        self.assertLess(time.monotonic() - t0, 4)
        self.assertIn("qclient await", r.stderr)
        self.c.qclient("submit", "sleep", '{"ms": 5000}', "--job-timeout", "0.2",
                       check=EXIT_JOB_TIMEOUT)
        r = self.c.qclient("await", "12345", check=EXIT_UNKNOWN)
        self.assertEqual(json.loads(r.stdout)["status"], "unknown")
        self.c.qclient("status", "12345", check=EXIT_UNKNOWN)
        # several jobs: the code of the first (argument order) not ok
        ok = int(self.c.qclient("submit", "echo", "1", "--detach", check=EXIT_OK).stdout)
        bad = int(self.c.qclient("submit", "fail", "{}", "--detach", check=EXIT_OK).stdout)
        self.c.qclient("await", str(ok), "999", str(bad), check=EXIT_UNKNOWN)
        self.c.qclient("await", str(ok), str(bad), "999", check=EXIT_FAILED)

    def test_unreachable(self):
        ep = "ipc://" + self.c.path("nobody.sock")
        t0 = time.monotonic()
        r = self.c.qclient("--broker", ep, "--connect-timeout", "0.5", "submit", "echo", "1",
                           check=EXIT_UNREACHABLE)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIn(ep, r.stderr)
        self.assertIn("qbroker", r.stderr)
        # QJOB_BROKER is the default endpoint
        self.c.env["QJOB_BROKER"] = ep
        r = self.c.qclient("stats", "--connect-timeout", "0.3", check=EXIT_UNREACHABLE)
        self.assertIn(ep, r.stderr)

    def test_refused(self):
        self.start(procs=0, broker_args=("--max-depth", "1"))
        self.c.qclient("submit", "echo", "1", "--detach", check=EXIT_OK)
        r = self.c.qclient("submit", "echo", "2", "--detach", check=EXIT_REFUSED)
        self.assertIn("queue_full", r.stderr)

    def test_help_documents_exit_codes(self):
        for cmd in ([], ["submit"], ["await"], ["status"], ["stats"], ["cancel"], ["map"]):
            r = subprocess.run([harness.QCLIENT] + cmd + ["--help"], capture_output=True,
                               text=True, timeout=10)
            self.assertEqual(r.returncode, 0, cmd)
            self.assertIn("usage: qclient", r.stdout)
            self.assertIn("4 broker unreachable", r.stdout)
            self.assertIn("8 unknown job id", r.stdout)
        r = subprocess.run([harness.QCLIENT, "map", "--help"], capture_output=True, text=True)
        for opt in ("--batch", "--inflight", "--ordered"):
            self.assertIn(opt, r.stdout)

    # ------------------------------------------------- status, stats, cancel

    def test_status_and_stats(self):
        self.start(procs=1)
        jid = int(self.c.qclient("submit", "sleep", '{"ms": 400}', "--detach").stdout)
        st = json.loads(self.c.qclient("status", str(jid), check=EXIT_OK).stdout)
        self.assertIn(st["state"], ("queued", "running"))
        self.assertEqual(st["task"], "sleep")
        self.assertIsNone(st["status"])
        self.c.qclient("await", str(jid), check=EXIT_OK)
        st = json.loads(self.c.qclient("status", str(jid), check=EXIT_OK).stdout)
        self.assertEqual((st["state"], st["status"]), ("done", "ok"))
        s = json.loads(self.c.qclient("stats", "--json", check=EXIT_OK).stdout)
        for k in ("uptime", "clients", "workers", "submitted", "done", "failed", "retried",
                  "lost", "cancelled", "bad", "bad_by", "rejected", "kept", "rss", "queues",
                  "wlist"):
            self.assertIn(k, s)
        self.assertEqual(s["bad"], 0)
        q = [q for q in s["queues"] if q["name"] == "default"][0]
        self.assertGreaterEqual(q["done"], 1)
        # The recent rate: all jobs of this young queue were done within its window.
        self.assertEqual(q["rate_secs"], 10)
        self.assertEqual(q["done_recent"], q["done"])
        self.assertEqual(sum(w["slots"] for w in s["wlist"]), 1)
        table = self.c.qclient("stats", check=EXIT_OK).stdout
        for word in ("QUEUE", "DEPTH", "RUNNING", "DONE", "FAILED", "WORKER", "SLOTS", "BUSY",
                     "DONE/S", "default", "bad frames: 0"):
            self.assertIn(word, table)
        self.assertIn(s["wlist"][0]["name"], table)
        # Where the finished jobs' time went, by jobs per SUBMIT: one row,
        # the sleep's 400 ms nearly all compute.
        self.assertEqual(q["b_jobs"][0], q["done"])
        rows = [l.split() for l in table.splitlines() if l.startswith("default ") and
                len(l.split()) == 6]
        self.assertEqual(len(rows), 1, table)
        self.assertEqual(rows[0][1:3], ["1", str(q["done"])])
        self.assertGreaterEqual(float(rows[0][4]), 400000)
        self.assertLess(float(rows[0][5]), 50)
        self.assertIn("COMM %", table)

    def test_cancel(self):
        self.start(procs=1)
        running = int(self.c.qclient("submit", "sleep", '{"ms": 5000}', "--detach").stdout)
        harness.wait_for(lambda: json.loads(self.c.qclient("status", str(running)).stdout)
                         ["state"] == "running", what="the first job to run")
        queued = int(self.c.qclient("submit", "sleep", '{"ms": 5000}', "--detach").stdout)
        r = self.c.qclient("cancel", str(queued), str(running), check=EXIT_OK)
        outcomes = [json.loads(x) for x in r.stdout.splitlines()]
        self.assertEqual(outcomes, [{"id": queued, "outcome": "removed"},
                                    {"id": running, "outcome": "requested"}])
        r = self.c.qclient("await", str(queued), check=EXIT_CANCELLED)
        self.assertEqual(json.loads(r.stdout)["status"], "cancelled")
        t0 = time.monotonic()
        self.c.qclient("await", str(running), "--timeout", "10", check=EXIT_CANCELLED)
        self.assertLess(time.monotonic() - t0, 4)   # stopped at its next yield
        r = self.c.qclient("cancel", str(queued), "777", check=EXIT_UNKNOWN)
        self.assertEqual([json.loads(x)["outcome"] for x in r.stdout.splitlines()],
                         ["done", "unknown"])

    # --------------------------------------------------------------- map

    def test_map_ordered_and_unordered(self):
        self.start(procs=2, coros=3)
        lines = [{"n": i} for i in range(200)]
        text = "".join(json.dumps(x) + "\n" for x in lines)
        r = self.c.qclient("map", "echo", "--ordered", "--batch", "7", "--inflight", "20",
                           input=text, check=EXIT_OK)
        self.assertEqual([json.loads(x) for x in r.stdout.splitlines()], lines)
        r = self.c.qclient("map", "echo", input=text, check=EXIT_OK)
        got = [json.loads(x) for x in r.stdout.splitlines()]
        self.assertEqual(sorted(g["n"] for g in got), list(range(200)))
        # unordered prints by completion; --ordered by input line
        sleeps = '{"ms": 600}\n{"ms": 100}\n\n{"ms": 350}\n'
        r = self.c.qclient("map", "sleep", "--json", input=sleeps, check=EXIT_OK)
        self.assertEqual([json.loads(x)["line"] for x in r.stdout.splitlines()], [2, 4, 1])
        r = self.c.qclient("map", "sleep", "--json", "--ordered", input=sleeps, check=EXIT_OK)
        self.assertEqual([json.loads(x)["line"] for x in r.stdout.splitlines()], [1, 2, 4])
        # a failure: null on stdout, exit 1, the rest still done
        r = self.c.qclient("map", "fail", "--ordered", input='{"message": "m1"}\n',
                           check=EXIT_FAILED)
        self.assertEqual(r.stdout, "null\n")
        self.assertIn("line 1", r.stderr)

    def test_map_bad_json_line(self):
        self.start(procs=1)
        before = self.c.stats()["submitted"]
        text = '{"i": 1}\n{"i": 2}\n{"i": 3}\n{"i": [}\n{"i": 5}\n'
        r = self.c.qclient("map", "echo", "--ordered", input=text, check=EXIT_USAGE)
        self.assertIn("bad JSON args at line 4, column", r.stderr)
        self.assertEqual([json.loads(x) for x in r.stdout.splitlines()],
                         [{"i": 1}, {"i": 2}, {"i": 3}])
        self.assertEqual(self.c.stats()["submitted"] - before, 3)

    def test_example_gather(self):
        self.start(procs=2, coros=4)
        r = subprocess.run([harness.EXAMPLE_GATHER], capture_output=True, text=True,
                           timeout=60, env=self.c.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("100/100", r.stdout)

    # ------------------------------------------- library through ctypes

    def test_wait_any_order_and_timeouts(self):
        self.start(procs=1, coros=4)
        res = self.lib_scenario(r'''
c = client()
jobs = [submit(c, "sleep", {"ms": ms}) for ms in (300, 100, 200)]
arr = (ctypes.c_void_p * 3)(*[j.value for j in jobs])
order = []
left = [0, 1, 2]
while left:
    sub = (ctypes.c_void_p * len(left))(*[arr[i] for i in left])
    k = lib.qj_wait_any(sub, len(left), 10000)
    assert k >= 0
    order.append(left.pop(k))
t0 = time.monotonic()
slow = submit(c, "sleep", {"ms": 3000})
rc = lib.qj_await(slow, 150)
waited = time.monotonic() - t0
rc2 = lib.qj_await(slow, 10000)
out(order=order, rc=rc, waited=waited, rc2=rc2, st=lib.qj_job_status(slow))
free(slow, *jobs)
lib.qj_client_destroy(ctypes.byref(c))
''')[0]
        self.assertEqual(res["order"], [1, 2, 0])   # 100, 200, 300 ms
        self.assertEqual(res["rc"], -1)
        self.assertLess(res["waited"], 1.5)
        self.assertEqual((res["rc2"], res["st"]), (0, 0))

    def test_attach_by_id(self):
        self.start(procs=1)
        jid = int(self.c.qclient("submit", "echo", '{"k": "v"}', "--detach").stdout)
        res = self.lib_scenario(r'''
c = client()
a = ctypes.c_void_p(lib.qj_attach(c, %d))
b = ctypes.c_void_p(lib.qj_attach(c, 4242))
arr = (ctypes.c_void_p * 2)(a.value, b.value)
rc = lib.qj_gather(arr, 2, 10000)
out(rc=rc, st=[lib.qj_job_status(a), lib.qj_job_status(b)], value=value(a))
free(a, b)
lib.qj_client_destroy(ctypes.byref(c))
''' % jid)[0]
        self.assertEqual(res, {"rc": 0, "st": [0, 5], "value": {"k": "v"}})

    def test_reconnect_after_broker_restart(self):
        """The broker dies and comes back on the same endpoint: the client
        reconnects on its own, keeps its handles, resends the submit it
        made meanwhile, and gets the result of the one the old broker had
        accepted (its journal kept it across the SIGKILL)."""
        self.start(procs=0)
        p = self.lib_start(r'''
c = client()
before = submit(c, "echo", {"when": "before"})
assert lib.qj_accepted(before, 5000) == 0
out(step="accepted", id=lib.qj_job_id(before))
sys.stdin.readline()          # the broker is gone now
during = submit(c, "echo", {"when": "during"})
lib.qj_client_process(c)
out(step="submitted")
sys.stdin.readline()          # a new broker and a worker are up
arr = (ctypes.c_void_p * 2)(before.value, during.value)
rc = lib.qj_gather(arr, 2, 20000)
out(step="done", rc=rc, st=[lib.qj_job_status(before), lib.qj_job_status(during)],
    value=value(during))
free(before, during)
lib.qj_client_destroy(ctypes.byref(c))
''')
        try:
            self.assertEqual(json.loads(p.stdout.readline())["step"], "accepted")
            self.c.broker.stop(signal.SIGKILL)
            p.stdin.write("\n")
            p.stdin.flush()
            self.assertEqual(json.loads(p.stdout.readline())["step"], "submitted")
            self.c.start_broker()
            self.c.start_worker(procs=1)
            p.stdin.write("\n")
            p.stdin.flush()
            res = json.loads(p.stdout.readline())
            self.assertEqual(res["rc"], 0)
            self.assertEqual(res["st"], [0, 0])   # both ok
            self.assertEqual(res["value"], {"when": "during"})
            self.assertEqual(p.wait(30), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stdin.close()
            p.stderr.close()


class WireTest(harness.ClusterTest):
    """qclient against a fake broker that speaks the spec (wire.py)."""

    def test_hello_and_batching(self):
        ctx = zmq.Context.instance()
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        ep = "ipc://" + self.c.path("fake.sock")
        router.bind(ep)
        seen = {"hello": [], "submits": []}
        stop = threading.Event()

        def serve():
            next_id = 100
            while not stop.is_set():
                if not router.poll(20):
                    continue
                ident, frame = router.recv_multipart()
                cmd, body = wire.decode(frame)
                if cmd == wire.HELLO:
                    seen["hello"].append(body)
                    router.send_multipart([ident, wire.welcome(1000, 3)])
                elif cmd == wire.SUBMIT:
                    seen["submits"].append(len(body["jobs"]))
                    acks, res = [], []
                    for j in body["jobs"]:
                        next_id += 1
                        acks.append([j["ref"], next_id])
                        res.append({"id": next_id, "ref": j["ref"], "st": 0,
                                    "val": j.get("args", wire.pack(None))})
                    router.send_multipart([ident, wire.accepted(acks)])
                    router.send_multipart([ident, wire.results(res)])

        th = threading.Thread(target=serve, daemon=True)
        th.start()
        try:
            text = "".join('{"i": %d}\n' % i for i in range(10))
            r = subprocess.run([harness.QCLIENT, "--broker", ep, "map", "echo", "--ordered",
                                "--batch", "3"], input=text, capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([json.loads(x)["i"] for x in r.stdout.splitlines()],
                             list(range(10)))
        finally:
            stop.set()
            th.join(5)
            router.close()
        hello = seen["hello"][0]
        self.assertEqual(hello["role"], wire.CLIENT)
        self.assertEqual(len(hello["cid"]), 16)
        self.assertRegex(hello["name"], r"^[^:]+:\d+$")
        self.assertEqual(sum(seen["submits"]), 10)
        self.assertLessEqual(max(seen["submits"]), 3)


if __name__ == "__main__":
    harness.main()
