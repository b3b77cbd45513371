"""The Python client against real qbroker and qworker processes: every call
of the asyncio and blocking APIs, errors and timeouts included.

Uses tests/integration/harness.py (QJOB_BUILD_DIR says where the programs
are).  Each class shares one cluster between its tests; each test runs under
an overall timeout, and every wait inside it is bounded.
"""

import asyncio
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("QJOB_SOURCE_DIR") or os.path.join(HERE, "..", "..", "..")
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))

import harness  # noqa: E402
import qjob  # noqa: E402
import qjob.blocking  # noqa: E402

TEST_TIMEOUT = 60


class ClusterCase(unittest.TestCase):
    """A broker and one worker shared by the tests of a class; its logs are
    printed when a test fails.  self.run_async(coro) runs a test body with
    a connected asyncio client as its argument."""

    worker_args = ("--coros", "8")
    procs = 2

    @classmethod
    def setUpClass(cls):
        cls.cluster = harness.Cluster()
        try:
            cls.cluster.start_broker()
            cls.cluster.start_worker(*cls.worker_args, procs=cls.procs)
        except BaseException:
            cls.cluster.dump_logs()
            cls.cluster.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def run(self, result=None):
        failures = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > failures:
            self.cluster.dump_logs()
        return out

    def run_async(self, body, **options):
        async def main():
            options.setdefault("connect_timeout", 5)
            async with qjob.Client(self.cluster.endpoint, **options) as c:
                return await body(c)
        return asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT))


class AsyncApi(ClusterCase):
    def test_submit_and_await(self):
        async def body(c):
            job = await c.submit("pi", samples=200000)
            self.assertGreater(job.id, 0)
            value = await job
            self.assertAlmostEqual(value, 3.14159, delta=0.05)
            r = job.outcome
            self.assertEqual((r.status, r.attempts, r.error, r.id), ("ok", 1, None, job.id))
            self.assertTrue(r.worker)
            t = r.times
            self.assertTrue(0 < t.started <= t.finished <= t.delivered, t)
            self.assertTrue(0 < t.submitted <= t.queued <= t.dispatched, t)
            echo = {"a": [1, 2.5, "x", None, True], "b": b"\x00\xff", "n": -(2 ** 40)}
            self.assertEqual(await (await c.submit("echo", echo)), echo)
            self.assertEqual(await (await c.submit("echo", a=1)), {"a": 1})
            self.assertIsNone(await (await c.submit("noop")))
        self.run_async(body)

    def test_gather(self):
        async def body(c):
            jobs = [c.submit_nowait("pi", samples=10000, seed=i) for i in range(8)]
            values = await asyncio.gather(*jobs)
            self.assertEqual(len(values), 8)
            for v in values:
                self.assertAlmostEqual(v, 3.14, delta=0.2)
            self.assertEqual(await c.gather(*jobs), values)
            many = await c.submit_many("echo", [[i] for i in range(300)])
            self.assertEqual(await c.gather(*many, timeout=30), [[i] for i in range(300)])
        self.run_async(body)

    def test_as_completed_order(self):
        async def body(c):
            jobs = [c.submit_nowait("sleep", ms=ms) for ms in (300, 100, 200)]
            order = [job async for job in c.as_completed(jobs, timeout=10)]
            self.assertEqual(order, [jobs[1], jobs[2], jobs[0]])
            self.assertTrue(all(j.outcome.ok for j in order))
            order = [job async for job in qjob.as_completed(jobs)]   # all done already
            self.assertEqual(set(order), set(jobs))
        self.run_async(body)

    def test_waiting_timeouts_leave_the_job_running(self):
        async def body(c):
            job = await c.submit("sleep", ms=2000)
            t0 = time.monotonic()
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(job, 0.1)
            with self.assertRaises(asyncio.TimeoutError):
                await job.get(timeout=0.1)
            with self.assertRaises(asyncio.TimeoutError):
                await c.gather(job, timeout=0.1)
            self.assertLess(time.monotonic() - t0, 1.5)   # the waits ended, not the job
            self.assertIsNone(await asyncio.wait_for(job, 10))
            self.assertEqual(job.outcome.status, "ok")
        self.run_async(body)

    def test_job_timeout(self):
        async def body(c):
            job = await c.submit("sleep", ms=5000, job_timeout=0.2)
            t0 = time.monotonic()
            with self.assertRaises(qjob.JobTimeout) as cm:
                await asyncio.wait_for(job, 10)
            self.assertLess(time.monotonic() - t0, 4)
            self.assertEqual(cm.exception.result.status, "timeout")
            self.assertNotIsInstance(cm.exception, TimeoutError)
        self.run_async(body)

    def test_errors(self):
        async def body(c):
            with self.assertRaises(qjob.JobFailed) as cm:
                await (await c.submit("fail", message="it broke here"))
            self.assertIn("it broke here", str(cm.exception))
            self.assertEqual(cm.exception.result.error, "it broke here")

            with self.assertRaises(qjob.JobFailed) as cm:
                await (await c.submit("no_such_task"))
            self.assertIn("no_such_task", cm.exception.result.error)

            with self.assertRaises(qjob.JobFailed) as cm:     # bad arguments, for the task
                await (await c.submit("sleep", ms="soon"))
            self.assertIn("sleep takes", cm.exception.result.error)
            with self.assertRaises(qjob.JobFailed):
                await (await c.submit("pi"))

            with self.assertRaises(qjob.UnknownJob) as cm:
                await asyncio.wait_for(c.attach(12345), 10)
            self.assertEqual(cm.exception.job_id, 12345)

            for bad in ({"priority": 1000}, {"queue": "q" * 65}, {"key": "k" * 200}):
                with self.assertRaises(ValueError):
                    c.submit_nowait("echo", **bad)
            with self.assertRaises(ValueError):
                c.submit_nowait("t" * 129)
            with self.assertRaises(ValueError):
                c.submit_nowait("echo", {"blob": b"x" * (1 << 20)})
            with self.assertRaises(ValueError):
                c.submit_nowait("echo", {"obj": object()})

            job = await c.submit("fail", retries=1, backoff=0.05)
            with self.assertRaises(qjob.JobFailed) as cm:
                await asyncio.wait_for(job, 10)
            self.assertEqual(cm.exception.result.attempts, 2)
        self.run_async(body)

    def test_attach_from_a_second_client(self):
        async def body(c):
            job = await c.submit("echo", "hi", detach=True)
            done = await c.submit("echo", "kept")
            await done
            other = await qjob.connect(self.cluster.endpoint)
            try:
                self.assertEqual(await asyncio.wait_for(other.attach(job.id), 10), "hi")
                self.assertEqual(await asyncio.wait_for(other.attach(done.id), 10), "kept")
                self.assertEqual((await other.attach(job.id).wait(timeout=10)).worker,
                                 (await job.wait(timeout=10)).worker)
            finally:
                await other.close()
        self.run_async(body)

    def test_queues_status_and_cancel(self):
        async def body(c):
            # nobody serves this queue: the job stays queued until cancelled
            job = await c.submit("echo", 1, queue="nobody", priority=5)
            st = await job.status()
            self.assertEqual((st.state, st.queue, st.task, st.result),
                             ("queued", "nobody", "echo", None))
            self.assertEqual(await job.cancel(), "removed")
            with self.assertRaises(qjob.JobCancelled):
                await asyncio.wait_for(job, 10)
            self.assertEqual(await job.cancel(), "done")
            st = await job.status()
            self.assertEqual((st.state, st.result.status), ("done", "cancelled"))

            running = await c.submit("sleep", ms=10000)
            for _ in range(100):
                if (await running.status()).state == "running":
                    break
                await asyncio.sleep(0.05)
            self.assertEqual(await running.cancel(), "requested")
            with self.assertRaises(qjob.JobCancelled):
                await asyncio.wait_for(running, 10)

            self.assertEqual(await c.cancel([12345]), {12345: "unknown"})
            (unknown,) = await c.status([12345])
            self.assertEqual(unknown.state, "unknown")
        self.run_async(body)

    def test_delay_key_and_stats(self):
        async def body(c):
            t0 = time.time()
            job = await c.submit("echo", "later", delay=0.5)
            self.assertEqual((await job.status()).state, "delayed")
            self.assertEqual(await asyncio.wait_for(job, 10), "later")
            self.assertGreaterEqual(job.outcome.times.started / 1e6, t0 + 0.4)

            a = await c.submit("echo", 1, key="only-once")
            b = await c.submit("echo", 2, key="only-once")
            self.assertEqual(a.id, b.id)
            self.assertEqual(await b, 1)

            s = await c.stats()
            for key in ("uptime", "clients", "workers", "submitted", "done", "queues", "wlist"):
                self.assertIn(key, s)
            self.assertGreaterEqual(s["clients"], 1)
            self.assertGreaterEqual(sum(w["slots"] for w in s["wlist"]), self.procs)
            q = next(q for q in s["queues"] if q["name"] == "default")
            self.assertEqual(len(q["b_jobs"]), 13)   # by jobs per SUBMIT: 1, 2-3 ... 4096
            self.assertGreaterEqual(q["b_jobs"][0], 2)
            self.assertLessEqual(sum(q["b_compute_us"]), q["compute_us"])
        self.run_async(body)

    def test_dead_letters_and_requeue(self):
        async def body(c):
            job = await c.submit("fail", message="dead on arrival")
            with self.assertRaises(qjob.JobFailed):
                await asyncio.wait_for(job, 10)
            dead = await c.dead(queue="default", limit=1000)
            self.assertIn(job.id, [d.id for d in dead])
            d = [d for d in dead if d.id == job.id][0]
            self.assertEqual((d.state, d.result.error), ("dead", "dead on arrival"))
            self.assertEqual(await c.requeue([job.id, 12345]),
                             {job.id: "requeued", 12345: "unknown"})
        self.run_async(body)

    def test_many_jobs_in_batches(self):
        async def body(c):
            jobs = [c.submit_nowait("noop") for _ in range(5000)]
            await asyncio.wait_for(c.gather(*jobs), 60)
            ids = [j.id for j in jobs]
            self.assertEqual(len(set(ids)), 5000)
            self.assertEqual(ids, sorted(ids))   # accepted in submit order
        self.run_async(body, max_inflight=3000)


class BrokerRestart(ClusterCase):
    procs = 1

    def test_client_carries_on_after_a_broker_restart(self):
        async def body(c):
            self.assertEqual(await (await c.submit("echo", 1)), 1)
            self.cluster.broker.stop()
            self.cluster.start_broker()
            self.cluster.start_worker(procs=1)
            job = await c.submit("echo", 2, timeout=15)
            self.assertEqual(await asyncio.wait_for(job, 15), 2)
        self.run_async(body, heartbeat=0.2)


class BlockingApi(ClusterCase):
    def test_blocking_calls(self):
        with qjob.blocking.Client(self.cluster.endpoint) as c:
            job = c.submit("pi", samples=10000)
            self.assertGreater(job.id, 0)
            self.assertAlmostEqual(job.get(timeout=10), 3.14, delta=0.2)
            self.assertTrue(job.done())
            self.assertEqual(job.wait().status, "ok")
            self.assertEqual(job.outcome.status, "ok")

            jobs = [c.submit_nowait("sleep", ms=ms) for ms in (300, 100, 200)]
            order = list(c.as_completed(jobs, timeout=10))
            self.assertEqual([j.id for j in order], [jobs[1].id, jobs[2].id, jobs[0].id])

            many = c.submit_many("echo", [[i] for i in range(50)])
            self.assertEqual(c.gather(many, timeout=10), [[i] for i in range(50)])

            slow = c.submit("sleep", ms=600)
            with self.assertRaises(TimeoutError):
                slow.get(timeout=0.1)
            self.assertIsNone(slow.get(timeout=10))

            self.assertEqual(c.attach(jobs[0].id).get(timeout=10), None)
            with self.assertRaises(qjob.UnknownJob):
                c.attach(12345).get(timeout=10)
            with self.assertRaises(qjob.JobFailed):
                c.submit("fail").get(timeout=10)

            queued = c.submit("echo", 1, queue="nobody")
            self.assertEqual(queued.accepted(), queued.id)
            self.assertEqual(queued.status().state, "queued")
            self.assertEqual(queued.cancel(), "removed")
            with self.assertRaises(qjob.JobCancelled):
                queued.get(timeout=10)
            self.assertEqual(c.status([queued.id])[0].state, "done")
            self.assertEqual(c.cancel([queued.id]), {queued.id: "done"})
            self.assertIn("wlist", c.stats())
            self.assertIsInstance(c.dead(), list)
            self.assertEqual(c.requeue([12345]), {12345: "unknown"})
        with self.assertRaises(qjob.ClientClosed):
            c.submit("echo")

    def test_unreachable(self):
        t0 = time.monotonic()
        with self.assertRaises(qjob.BrokerUnreachable):
            qjob.blocking.Client("ipc://" + self.cluster.path("nobody"), connect_timeout=0.3)
        self.assertLess(time.monotonic() - t0, 3)


if __name__ == "__main__":
    unittest.main(verbosity=2)
