"""qworker against a real qbroker: built-in and plugin tasks, errors,
supervision (restart, drain, recycling), coroutine concurrency, sub-job
trees, cancel and timeout."""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import QWORKER, EXAMPLE_PLUGIN, wait_for  # noqa: E402


def child_pids(proc):
    """Pids of the worker processes the supervisor started, in order."""
    return [int(p) for p in re.findall(r"worker process \d+ started \(pid (\d+)\)", proc.output())]


SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:")


class WorkerTest(harness.ClusterTest):

    def tearDown(self):
        # Stop the workers first: leaks are reported when a process exits.
        # In an ASan+UBSan build, a report from any worker process fails the test.
        reports = []
        try:
            for p in self.c.procs:
                if p.name == "qworker":
                    p.signal(signal.SIGTERM)
                    try:
                        p.p.wait(40)
                    except subprocess.TimeoutExpired:
                        p.signal(signal.SIGKILL)
                        p.p.wait(5)
                    reports += [line for line in p.output().splitlines()
                                if SANITIZER_REPORT.search(line)]
        finally:
            super().tearDown()   # stops whatever is left, by pid
        self.assertEqual(reports, [], "sanitizer reports from qworker")

    def submit(self, task, args=None, *opts, check=0, timeout=60):
        argv = ["submit", task] + ([json.dumps(args)] if args is not None else []) + list(opts)
        r = self.c.qclient(*argv, "--timeout", str(timeout), timeout=timeout + 30, check=check)
        return json.loads(r.stdout) if check == 0 and "--detach" not in opts else r

    def state(self, job_id):
        r = self.c.qclient("status", str(job_id), "--timeout", "5", timeout=30)
        return json.loads(r.stdout.splitlines()[0])["state"] if r.stdout else None

    def wait_running(self, job_id):
        wait_for(lambda: self.state(job_id) == "running", timeout=20,
                 what="job %s to run" % job_id)

    # ------------------------------------------------------------ tasks

    def test_builtin_tasks(self):
        self.c.start_broker()
        self.c.start_worker()
        self.assertIsNone(self.submit("noop", {}))
        self.assertEqual(self.submit("echo", {"a": [1, "two", {"x": 2.5}]}),
                         {"a": [1, "two", {"x": 2.5}]})
        self.assertIsNone(self.submit("sleep", {"ms": 50}))
        est = self.submit("pi", {"samples": 1000000})
        self.assertAlmostEqual(est, 3.14159, delta=0.02)
        r = self.submit("fail", {"message": "boom"}, check=harness.EXIT_FAILED)
        self.assertIn("boom", r.stderr)
        r = self.c.qclient("submit", "echo", '{"k": 1}', "--json", check=0)
        out = json.loads(r.stdout)
        self.assertEqual(out["status"], "ok")
        self.assertRegex(out["worker"], r"^[^:]+:\d+/0$")   # host:pid/n
        self.assertEqual(out["attempts"], 1)
        t = out["times"]
        self.assertTrue(0 < t["started"] <= t["finished"], t)

    def test_plugin_tasks(self):
        self.c.start_broker()
        self.c.start_worker("--tasks", EXAMPLE_PLUGIN)
        self.assertEqual(self.submit("wordcount", {"text": "to be  or not\tto be"}), 6)
        self.assertEqual(self.submit("fib", {"n": 90}), 2880067194370816120)
        r = self.submit("fib", {"n": 93}, check=harness.EXIT_FAILED)
        self.assertIn("0 <= N <= 92", r.stderr)
        self.assertEqual(self.submit("tree", {"depth": 1, "fanout": 3}), 4)

    def test_bad_plugin(self):
        for path, why in (("/nonexistent/x.so", "cannot load plugin /nonexistent/x.so"),
                          ("libm.so.6", "is not a qjob plugin")):
            r = subprocess.run([QWORKER, "--broker", "ipc://" + self.c.path("none"), "--tasks",
                                path], capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(why, r.stderr)
            self.assertNotIn("started (pid", r.stderr)   # failed before forking

    def test_unknown_task(self):
        self.c.start_broker()
        self.c.start_worker()
        r = self.submit("nosuch", {}, check=harness.EXIT_FAILED, timeout=20)
        self.assertIn("unknown task 'nosuch' (this worker has: echo, fail, noop, pi, pi_split, "
                      "sleep)", r.stderr)
        self.assertEqual(self.submit("echo", 5), 5)   # and the worker goes on

    def test_job_timeout(self):
        self.c.start_broker()
        self.c.start_worker()
        start = time.monotonic()
        self.submit("sleep", {"ms": 20000}, "--job-timeout", "0.3",
                    check=harness.EXIT_JOB_TIMEOUT, timeout=30)
        self.assertLess(time.monotonic() - start, 15)

    def test_job_timeout_without_yielding(self):
        # spin never yields: its process is killed past the timeout and
        # replaced, and the job still ends as timeout, not lost.
        self.c.start_broker()
        w = self.c.start_worker("--tasks", EXAMPLE_PLUGIN)
        start = time.monotonic()
        self.submit("spin", {"ms": 60000}, "--job-timeout", "1",
                    check=harness.EXIT_JOB_TIMEOUT, timeout=30)
        self.assertLess(time.monotonic() - start, 5)
        self.assertRegex(w.output(), r"job \d+ ran past its timeout by \d+ ms without "
                         r"yielding: killing worker process 0")
        pids = wait_for(lambda: len(child_pids(w)) >= 2 and child_pids(w), timeout=15,
                        what="a new child")
        self.assertNotIn("restarting it in", w.output())   # no crash backoff
        self.assertEqual(self.submit("echo", "next", timeout=30), "next")
        # With a retry left, the second attempt is killed too, and ends timeout.
        r = self.c.qclient("--json", "submit", "spin", '{"ms": 60000}', "--job-timeout", "1",
                           "--retries", "1", "--timeout", "60", timeout=90,
                           check=harness.EXIT_JOB_TIMEOUT)
        out = json.loads(r.stdout)
        self.assertEqual((out["status"], out["attempts"]), ("timeout", 2), out)
        wait_for(lambda: len(child_pids(w)) >= 4, timeout=15, what="two more children")
        self.assertNotIn(pids[0], child_pids(w)[1:])
        self.assertEqual(self.submit("echo", "again", timeout=30), "again")

    # -------------------------------------------------------- supervision

    def test_killed_child_restarts(self):
        self.c.start_broker()
        w = self.c.start_worker()
        wait_for(lambda: child_pids(w), what="the child's pid in the log")
        old = child_pids(w)[0]
        os.kill(old, signal.SIGKILL)   # our worker's own child, by pid
        pids = wait_for(lambda: len(child_pids(w)) >= 2 and child_pids(w), timeout=15,
                        what="a new child")
        self.assertNotEqual(pids[1], old)
        self.assertIn("killed by signal 9", w.output())
        wait_for(lambda: any(x["name"].endswith(":%d/0" % pids[1])
                             for x in self.c.stats()["wlist"]),
                 what="the new child in the broker's stats")
        self.assertEqual(self.submit("echo", "after", timeout=30), "after")

    def test_sigkill_mid_run_loses_nothing(self):
        """SIGKILL a worker process while it runs 100 sleep jobs: all 100
        complete, each result reaches the client exactly once, and those
        the dead process held ran again (attempt 2)."""
        self.c.start_broker("--heartbeat", "200")
        w = self.c.start_worker("--coros", "100", expect_slots=100)
        wait_for(lambda: child_pids(w), what="the child's pid in the log")
        victim = child_pids(w)[0]
        lines = "".join('{"ms": %d}\n' % (1500 + i) for i in range(100))
        mapper = self.c.start("qclient-map", [harness.QCLIENT, "map", "sleep", "--inflight", "100",
                                             "--json", "--timeout", "60"],
                              stdin=subprocess.PIPE)
        mapper.p.stdin.write(lines.encode())
        mapper.p.stdin.close()
        wait_for(lambda: self.c.stats()["queues"][0]["running"] >= 100, timeout=20,
                 what="the 100 jobs to run")
        os.kill(victim, signal.SIGKILL)   # our worker's own child, by pid
        self.assertEqual(mapper.p.wait(60), 0, mapper.output()[-2000:])
        results = [json.loads(x) for x in mapper.output().splitlines() if x.startswith("{")]
        ids = [r["id"] for r in results]
        self.assertEqual(len(ids), 100)
        self.assertEqual(len(set(ids)), 100)          # each delivered once
        self.assertTrue(all(r["status"] == "ok" for r in results))
        self.assertTrue(all(r["attempts"] == 2 for r in results), [r["attempts"] for r in results])
        self.assertEqual(self.c.stats()["lost"], 0)

    def test_sigterm_drains_running_job(self):
        self.c.start_broker()
        w = self.c.start_worker("--drain-timeout", "30")
        job = self.submit("sleep", {"ms": 1500}, "--detach").stdout.strip()
        self.wait_running(job)
        w.signal(signal.SIGTERM)
        r = self.c.qclient("await", job, "--timeout", "30", "--json", timeout=60, check=0)
        out = json.loads(r.stdout)
        self.assertEqual(out["status"], "ok")
        self.assertEqual(out["attempts"], 1)   # finished by the draining worker, not requeued
        w.p.wait(15)
        self.assertEqual(w.p.returncode, 0)
        self.assertIn("draining", w.output())

    def test_max_jobs_recycles_children(self):
        self.c.start_broker()
        w = self.c.start_worker("--max-jobs-per-child", "5")
        lines = "".join(json.dumps({"i": i}) + "\n" for i in range(23))
        r = self.c.qclient("map", "echo", "--ordered", "--timeout", "60", input=lines, check=0,
                           timeout=90)
        self.assertEqual([json.loads(x)["i"] for x in r.stdout.split()], list(range(23)))
        pids = child_pids(w)
        self.assertGreaterEqual(len(set(pids)), 4, w.output()[-3000:])
        self.assertIn("was recycled", w.output())

    def test_max_rss_recycles_children(self):
        self.c.start_broker()
        w = self.c.start_worker("--max-rss", "1")   # every process is over 1 MB
        for i in range(3):
            self.assertEqual(self.submit("echo", i, timeout=30), i)
        wait_for(lambda: len(set(child_pids(w))) >= 3, timeout=15, what="3 children")
        self.assertIn("over --max-rss 1 MB", w.output())

    def test_broker_restart(self):
        self.c.start_broker()
        self.c.start_worker()
        self.assertEqual(self.submit("echo", 1), 1)
        self.c.broker.signal(signal.SIGKILL)   # our broker, by pid
        self.c.broker.p.wait(10)
        self.c.start_broker()
        # The worker hears nothing for hb x liveness, reconnects and says HELLO.
        self.assertEqual(self.submit("echo", 2, timeout=30), 2)

    def test_progress(self):
        self.c.start_broker()
        self.c.start_worker("--tasks", EXAMPLE_PLUGIN)
        job = self.submit("countdown", {"from": 20, "ms": 100}, "--detach").stdout.strip()

        def progress():
            r = self.c.qclient("status", job, "--timeout", "5", timeout=30)
            p = json.loads(r.stdout.splitlines()[0]).get("progress") if r.stdout else None
            return p if p and p["done"] >= 2 else None
        p = wait_for(progress, timeout=20, what="a progress report")
        self.assertEqual(p["total"], 20)
        self.assertEqual(p["note"], "%d to go" % (20 - p["done"]))
        # Cancelled between two steps: it stops at its next sleep.
        self.c.qclient("cancel", job, "--timeout", "10", timeout=30, check=0)
        self.c.qclient("await", job, "--timeout", "10", timeout=30, check=harness.EXIT_CANCELLED)

    # ---------------------------------------------------------- coroutines

    def test_thousand_sleeps_in_one_process(self):
        self.c.start_broker()
        self.c.start_worker("--coros", "1000", expect_slots=1000)
        lines = json.dumps({"ms": 100}) + "\n"
        start = time.monotonic()
        r = self.c.qclient("map", "sleep", "--inflight", "1000", "--timeout", "60",
                           input=lines * 1000, check=0, timeout=90)
        wall = time.monotonic() - start
        self.assertEqual(len(r.stdout.split()), 1000)
        print("\n1000 sleep jobs of 100 ms on one process with --coros 1000: %.2f s "
              "(sequential: 100 s)" % wall, file=sys.stderr)
        self.assertLess(wall, 20.0)
        self.assertGreaterEqual(wall, 0.1)   # they did sleep

    def test_pi_split_more_parts_than_slots(self):
        self.c.start_broker()
        # One slot, taken by pi_split itself: its parts run only because it
        # lends the slot while it waits for them.
        self.c.start_worker("--coros", "1", expect_slots=1)
        est = self.submit("pi_split", {"samples": 2000000, "parts": 12}, timeout=60)
        self.assertAlmostEqual(est, 3.14159, delta=0.01)

    def test_depth3_tree_with_fewer_slots_than_jobs(self):
        self.c.start_broker()
        self.c.start_worker("--tasks", EXAMPLE_PLUGIN, "--coros", "2", expect_slots=2)
        # 1 + 2 + 4 + 8 = 15 jobs, 7 of them waiting for others, on 2 slots.
        self.assertEqual(self.submit("tree", {"depth": 3, "fanout": 2}, timeout=60), 15)
        # A plain process pool (one slot) too.
        self.c.start_worker("--tasks", EXAMPLE_PLUGIN, "--coros", "1", expect_slots=1)
        self.assertEqual(self.submit("tree", {"depth": 3, "fanout": 3}, timeout=60), 40)

    def test_cancel_running_job(self):
        self.c.start_broker()
        self.c.start_worker("--coros", "4", expect_slots=4)
        job = self.submit("sleep", {"ms": 60000}, "--detach").stdout.strip()
        self.wait_running(job)
        st = json.loads(self.c.qclient("status", job).stdout)
        self.assertRegex(st["worker"] or "", r":\d+/0$")   # who holds it: host:pid/0
        start = time.monotonic()
        r = self.c.qclient("cancel", job, "--timeout", "10", timeout=30)
        self.assertIn("requested", r.stdout)
        self.c.qclient("await", job, "--timeout", "30", timeout=60, check=harness.EXIT_CANCELLED)
        self.assertLess(time.monotonic() - start, 15)
        self.assertEqual(self.submit("echo", 1), 1)

    def test_cancel_job_waiting_for_sub_jobs(self):
        """A cancelled job that waits for sub-jobs ends at once: it does not
        sit until its (long) sub-jobs finish."""
        self.c.start_broker()
        self.c.start_worker("--coros", "4", expect_slots=4)
        # Two pi sub-jobs of 2^31 samples each: seconds of CPU apiece.
        job = self.submit("pi_split", {"samples": 2 ** 32, "parts": 2}, "--detach").stdout.strip()
        self.wait_running(job)
        wait_for(lambda: self.c.stats()["queues"][0]["running"] >= 3, timeout=20,
                 what="the two sub-jobs to run")
        start = time.monotonic()
        r = self.c.qclient("cancel", job, "--timeout", "10", timeout=30)
        self.assertIn("requested", r.stdout)
        self.c.qclient("await", job, "--timeout", "30", timeout=60, check=harness.EXIT_CANCELLED)
        self.assertLess(time.monotonic() - start, 2.0)


if __name__ == "__main__":
    harness.main()
