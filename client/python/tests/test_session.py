"""The client's side of the conversation (PROTOCOL.md §4) against a scripted
broker: batching, acceptance and refusal, results and progress, requests,
heartbeats, reconnecting and resending, malformed input.  No qjob server
needed; every wait is bounded."""

import asyncio
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import zmq  # noqa: E402

import qjob  # noqa: E402
import qjob.blocking  # noqa: E402
from qjob import protocol as P  # noqa: E402
from fakebroker import FakeBroker  # noqa: E402


def result(job_id, value=None, st=P.ST_OK, err=None, ref=None):
    r = {"id": job_id, "st": st, "att": 1, "wk": "w:1/0", "t": [1, 2, 3, 4, 5]}
    if value is not None:
        r["val"] = P.pack_value(value)
    if err is not None:
        r["err"] = err
    if ref is not None:
        r["ref"] = ref
    return r


class Session(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.b = FakeBroker()
        self.clients = []

    async def asyncTearDown(self):
        for c in self.clients:
            await c.close(linger=0)
        self.b.close()

    async def client(self, hb=1000, live=3, **options):
        """A client connected to the fake broker: (client, routing id, HELLO)."""
        options.setdefault("request_timeout", 5)
        c = qjob.Client(self.b.endpoint, name="test", **options)
        self.clients.append(c)
        connecting = asyncio.ensure_future(c.connect())
        peer, hello = await self.b.welcome(hb=hb, live=live)
        await asyncio.wait_for(connecting, 5)
        return c, peer, hello

    async def test_hello_and_welcome(self):
        c, peer, hello = await self.client(hb=700, live=4, heartbeat=0.7)
        self.assertEqual(hello["role"], P.ROLE_CLIENT)
        self.assertEqual(len(hello["cid"]), 16)
        self.assertEqual(hello["name"], "test")
        self.assertEqual(hello["hb"], 700)
        self.assertEqual((c.hb_ms, c.liveness, c.broker_name), (700, 4, "fake"))

    async def test_connect_timeout(self):
        c = qjob.Client("ipc://" + os.path.join(self.b.dir, "nobody"), connect_timeout=0.3)
        t0 = time.monotonic()
        with self.assertRaises(qjob.BrokerUnreachable):
            await c.connect()
        self.assertLess(time.monotonic() - t0, 3)
        with self.assertRaises(qjob.ClientClosed):
            c.submit_nowait("echo")

    async def test_denied(self):
        c = qjob.Client(self.b.endpoint)
        connecting = asyncio.ensure_future(c.connect())
        peer, _ = await self.b.expect(P.HELLO)
        self.b.send(peer, P.ERROR, {"code": P.E_DENIED, "text": "no", "about": P.HELLO})
        with self.assertRaises(qjob.Denied):
            await asyncio.wait_for(connecting, 5)

    async def test_submits_of_one_iteration_share_a_submit(self):
        c, peer, _ = await self.client()
        jobs = [c.submit_nowait("echo", n=i) for i in range(3)]
        jobs.append(c.submit_nowait("echo", [1, 2], queue="q", priority=-3, job_timeout=1.5,
                                    retries=2, backoff=0.01, delay=60, key="k",
                                    progress=True))
        _, body = await self.b.expect(P.SUBMIT)
        sent = body["jobs"]
        self.assertEqual([j["ref"] for j in sent], [1, 2, 3, 4])
        self.assertEqual(P.unpack_value(sent[1]["args"]), {"n": 1})
        last = sent[3]
        self.assertEqual((last["q"], last["pri"], last["timeout"], last["retries"],
                          last["backoff"], last["key"], last["progress"]),
                         ("q", -3, 1500, 2, 10, "k", True))
        self.assertGreater(last["at"], (time.time() + 50) * 1e6)
        self.assertNotIn("detach", sent[0])
        self.assertAlmostEqual(sent[0]["ts"] / 1e6, time.time(), delta=5)
        self.b.send(peer, P.ACCEPTED, {"acks": [[j["ref"], 100 + j["ref"]] for j in sent]})
        ids = await asyncio.wait_for(asyncio.gather(*(j.accepted() for j in jobs)), 5)
        self.assertEqual(ids, [101, 102, 103, 104])
        self.b.send(peer, P.PROGRESS, {"id": 104, "done": 1, "total": 4, "note": "a"})
        self.b.send(peer, P.RESULTS, {"results": [result(101 + i, {"n": i}, ref=1 + i)
                                                  for i in range(3)]})
        values = await asyncio.wait_for(asyncio.gather(*jobs[:3]), 5)
        self.assertEqual(values, [{"n": 0}, {"n": 1}, {"n": 2}])
        self.assertEqual(jobs[3].progress, qjob.Progress(1, 4, "a"))
        r = jobs[0].outcome
        self.assertEqual((r.status, r.attempts, r.worker, r.times[:5]),
                         ("ok", 1, "w:1/0", (1, 2, 3, 4, 5)))
        self.assertGreater(r.times.delivered, 0)

    async def test_submit_waits_for_acceptance_and_raises_refused(self):
        c, peer, _ = await self.client()
        sub = asyncio.ensure_future(c.submit("echo", x=1))
        _, body = await self.b.expect(P.SUBMIT)
        self.assertFalse(sub.done())
        self.b.send(peer, P.ACCEPTED, {"acks": [[body["jobs"][0]["ref"], 77]]})
        job = await asyncio.wait_for(sub, 5)
        self.assertEqual(job.id, 77)
        sub = asyncio.ensure_future(c.submit("echo"))
        _, body = await self.b.expect(P.SUBMIT)
        self.b.send(peer, P.ACCEPTED, {"acks": [[body["jobs"][0]["ref"], 0, P.E_QUEUE_FULL,
                                                 "queue default is full"]]})
        with self.assertRaises(qjob.Refused) as cm:
            await asyncio.wait_for(sub, 5)
        self.assertEqual(cm.exception.result.code, "queue_full")
        self.assertIn("full", str(cm.exception))

    async def test_error_about_a_whole_submit_refuses_its_jobs(self):
        c, peer, _ = await self.client()
        first = [c.submit_nowait("echo") for _ in range(2)]
        await self.b.expect(P.SUBMIT)
        await asyncio.sleep(0)
        second = c.submit_nowait("echo")
        await self.b.expect(P.SUBMIT)
        self.b.send(peer, P.ERROR, {"code": P.E_INTERNAL, "text": "journal", "about": P.SUBMIT})
        for job in first:
            with self.assertRaises(qjob.Refused):
                await asyncio.wait_for(job, 5)
        self.assertFalse(second.done())
        self.b.send(peer, P.ACCEPTED, {"acks": [[second.ref, 9]]})
        self.assertEqual(await asyncio.wait_for(second.accepted(), 5), 9)

    async def test_acks_are_matched_by_ref_across_submits(self):
        c, peer, _ = await self.client()
        a = [c.submit_nowait("echo") for _ in range(3)]
        await self.b.expect(P.SUBMIT)
        await asyncio.sleep(0)
        b = c.submit_nowait("echo")
        await self.b.expect(P.SUBMIT)
        # one ACCEPTED for part of the first and all of the second, then the rest
        self.b.send(peer, P.ACCEPTED, {"acks": [[a[0].ref, 1], [a[1].ref, 2], [b.ref, 4]]})
        self.b.send(peer, P.ACCEPTED, {"acks": [[a[2].ref, 0, P.E_LIMIT]]})
        self.assertEqual(await asyncio.wait_for(b.accepted(), 5), 4)
        self.assertEqual([await j.accepted() for j in a[:2]], [1, 2])
        with self.assertRaises(qjob.Refused) as cm:
            await asyncio.wait_for(a[2], 5)
        self.assertEqual(cm.exception.result.code, "limit")
        self.assertEqual(len(c._batches), 0)

    async def test_submit_checks_arguments(self):
        c, peer, _ = await self.client()
        with self.assertRaises(ValueError):
            c.submit_nowait("")
        with self.assertRaises(ValueError):
            c.submit_nowait("t" * 129)
        with self.assertRaises(ValueError):
            c.submit_nowait("echo", priority=500)
        with self.assertRaises(ValueError):
            c.submit_nowait("echo", blob="x" * P.MAX_ARGS)
        with self.assertRaises(ValueError):
            c.submit_nowait("echo", obj=object())
        with self.assertRaises(TypeError):
            c.submit_nowait("echo", 1, x=2)
        with self.assertRaises(ValueError):
            c.attach(0)
        await self.b.nothing(0.2)

    async def test_batches_respect_the_item_limit_and_max_inflight(self):
        c, peer, _ = await self.client(live=100, max_inflight=5000)  # slow in debug mode
        jobs = [c.submit_nowait("noop") for _ in range(6000)]
        _, a = await self.b.expect(P.SUBMIT)
        _, b = await self.b.expect(P.SUBMIT)
        self.assertEqual((len(a["jobs"]), len(b["jobs"])), (4096, 904))
        await self.b.nothing(0.2)
        self.b.send(peer, P.ACCEPTED, {"acks": [[j["ref"], j["ref"]] for j in a["jobs"]]})
        _, rest = await self.b.expect(P.SUBMIT)
        self.assertEqual(len(rest["jobs"]), 1000)
        self.assertEqual(rest["jobs"][0]["ref"], 5001)
        self.assertEqual(jobs[0].id, 1)

    async def test_detached_job_is_awaited_only_when_waited_for(self):
        c, peer, _ = await self.client()
        job = c.submit_nowait("echo", detach=True)
        _, body = await self.b.expect(P.SUBMIT)
        self.assertTrue(body["jobs"][0]["detach"])
        self.b.send(peer, P.ACCEPTED, {"acks": [[job.ref, 55]]})
        await asyncio.wait_for(job.accepted(), 5)
        await self.b.nothing(0.2)
        waiting = asyncio.ensure_future(job.wait())
        _, body = await self.b.expect(P.AWAIT)
        self.assertEqual(body["ids"], [55])
        self.b.send(peer, P.RESULTS, {"results": [result(55, "v")]})
        self.assertEqual((await asyncio.wait_for(waiting, 5)).value, "v")

    async def test_progress_and_done_callbacks(self):
        c, peer, _ = await self.client()
        reports, finished = [], []
        job = c.submit_nowait("count", progress=lambda j, p: reports.append((j, p)))
        job.add_done_callback(finished.append)
        _, body = await self.b.expect(P.SUBMIT)
        self.assertTrue(body["jobs"][0]["progress"])
        self.b.send(peer, P.ACCEPTED, {"acks": [[job.ref, 60]]})
        for done in (1, 2):
            self.b.send(peer, P.PROGRESS, {"id": 60, "done": done, "total": 2})
        self.b.send(peer, P.RESULTS, {"results": [result(60, 2, ref=job.ref)]})
        self.assertEqual(await asyncio.wait_for(job, 5), 2)
        await asyncio.sleep(0)
        self.assertEqual(reports, [(job, qjob.Progress(1, 2, None)),
                                   (job, qjob.Progress(2, 2, None))])
        self.assertEqual(finished, [job])
        self.assertEqual(job.outcome.unwrap(), 2)

    async def test_a_keyed_job_is_awaited(self):
        """A key may give an older job's id, whose result goes to its first
        submitter: the client asks for it."""
        c, peer, _ = await self.client()
        job = c.submit_nowait("echo", key="k")
        await self.b.expect(P.SUBMIT)
        self.b.send(peer, P.ACCEPTED, {"acks": [[job.ref, 56]]})
        _, body = await self.b.expect(P.AWAIT)
        self.assertEqual(body["ids"], [56])
        self.b.send(peer, P.RESULTS, {"results": [result(56, "old")]})
        self.assertEqual(await asyncio.wait_for(job, 5), "old")

    async def test_attach(self):
        c, peer, _ = await self.client()
        a, b = c.attach(5), c.attach(6)
        _, body = await self.b.expect(P.AWAIT)
        self.assertEqual(body["ids"], [5, 6])
        self.b.send(peer, P.RESULTS, {"results": [result(5, st=P.ST_UNKNOWN),
                                                  result(6, st=P.ST_ERROR, err="boom")]})
        with self.assertRaises(qjob.UnknownJob):
            await asyncio.wait_for(a, 5)
        with self.assertRaises(qjob.JobFailed) as cm:
            await asyncio.wait_for(b, 5)
        self.assertIn("boom", str(cm.exception))
        self.assertEqual(cm.exception.job_id, 6)

    async def test_every_status_raises_its_exception(self):
        c, peer, _ = await self.client()
        kinds = {P.ST_ERROR: qjob.JobFailed, P.ST_TIMEOUT: qjob.JobTimeout,
                 P.ST_CANCELLED: qjob.JobCancelled, P.ST_LOST: qjob.JobLost,
                 P.ST_UNKNOWN: qjob.UnknownJob}
        jobs = {st: c.attach(10 + st) for st in kinds}
        await self.b.expect(P.AWAIT)
        self.b.send(peer, P.RESULTS, {"results": [result(10 + st, st=st) for st in kinds]})
        for st, exc in kinds.items():
            with self.assertRaises(exc):
                await asyncio.wait_for(jobs[st], 5)
            self.assertNotIsInstance(exc(jobs[st].outcome), TimeoutError)

    async def test_wait_timeout_leaves_the_job_alone(self):
        c, peer, _ = await self.client()
        job = c.attach(8)
        await self.b.expect(P.AWAIT)
        with self.assertRaises(asyncio.TimeoutError):
            await job.get(timeout=0.1)
        with self.assertRaises(asyncio.TimeoutError):
            await asyncio.wait_for(job, 0.1)
        self.b.send(peer, P.RESULTS, {"results": [result(8, 42)]})
        self.assertEqual(await asyncio.wait_for(job, 5), 42)

    async def test_as_completed_and_gather(self):
        c, peer, _ = await self.client()
        jobs = [c.attach(i) for i in (1, 2, 3)]
        await self.b.expect(P.AWAIT)
        order = []

        async def collect():
            async for job in c.as_completed(jobs, timeout=5):
                order.append(job.id)

        collecting = asyncio.ensure_future(collect())
        for i in (3, 1, 2):
            self.b.send(peer, P.RESULTS, {"results": [result(i, i * 10)]})
            await asyncio.sleep(0.05)
        await asyncio.wait_for(collecting, 5)
        self.assertEqual(order, [3, 1, 2])
        self.assertEqual(await c.gather(*jobs, timeout=1), [10, 20, 30])
        pending = c.attach(4)
        with self.assertRaises(asyncio.TimeoutError):
            await c.gather(jobs[0], pending, timeout=0.1)
        with self.assertRaises(asyncio.TimeoutError):
            async for _ in c.as_completed([pending], timeout=0.1):
                pass

    async def test_requests(self):
        c, peer, _ = await self.client()
        stats = asyncio.ensure_future(c.stats())
        _, body = await self.b.expect(P.STATS)
        self.b.send(peer, P.STATS_REP, {"rid": body["rid"], "workers": 2, "wlist": []})
        self.assertEqual((await asyncio.wait_for(stats, 5))["workers"], 2)

        status = asyncio.ensure_future(c.status([5, 6]))
        _, body = await self.b.expect(P.STATUS)
        self.assertEqual(body["ids"], [5, 6])
        self.b.send(peer, P.STATUS_REP, {"rid": body["rid"], "jobs": [
            {"id": 5, "state": 2, "q": "default", "task": "sleep", "prog": [1, 3, "n"]},
            {"id": 6, "state": 3, "st": 0, "val": P.pack_value(7)}]})
        s5, s6 = await asyncio.wait_for(status, 5)
        self.assertEqual((s5.state, s5.task, s5.progress, s5.result),
                         ("running", "sleep", qjob.Progress(1, 3, "n"), None))
        self.assertEqual((s6.state, s6.result.value), ("done", 7))

        cancel = asyncio.ensure_future(c.cancel([5, 6]))
        _, body = await self.b.expect(P.CANCEL)
        self.b.send(peer, P.CANCEL_REP, {"rid": body["rid"], "items": [[5, 1], [6, 2]]})
        self.assertEqual(await asyncio.wait_for(cancel, 5), {5: "requested", 6: "done"})

        dead = asyncio.ensure_future(c.dead(queue="q", limit=3))
        _, body = await self.b.expect(P.DEAD)
        self.assertEqual((body["q"], body["limit"]), ("q", 3))
        self.b.send(peer, P.DEAD_REP, {"rid": body["rid"], "jobs": [
            {"id": 9, "state": 4, "st": 1, "err": "boom"}]})
        (d,) = await asyncio.wait_for(dead, 5)
        self.assertEqual((d.id, d.state, d.result.error), (9, "dead", "boom"))

        requeue = asyncio.ensure_future(c.requeue([9, 10]))
        _, body = await self.b.expect(P.REQUEUE)
        self.b.send(peer, P.REQUEUE_REP, {"rid": body["rid"], "items": [[9, 0], [10, 3]]})
        self.assertEqual(await asyncio.wait_for(requeue, 5), {9: "requeued", 10: "unknown"})

        failing = asyncio.ensure_future(c.stats())
        _, body = await self.b.expect(P.STATS)
        self.b.send(peer, P.ERROR, {"code": P.E_INTERNAL, "text": "x", "rid": body["rid"],
                                    "about": P.STATS})
        with self.assertRaises(qjob.RequestError) as cm:
            await asyncio.wait_for(failing, 5)
        self.assertEqual(cm.exception.code, "internal")
        with self.assertRaises(asyncio.TimeoutError):
            await c.stats(timeout=0.1)

    async def test_job_cancel(self):
        c, peer, _ = await self.client()
        job = c.submit_nowait("sleep", ms=1000)
        await self.b.expect(P.SUBMIT)
        cancelling = asyncio.ensure_future(job.cancel())
        await asyncio.sleep(0.05)
        self.b.send(peer, P.ACCEPTED, {"acks": [[job.ref, 31]]})
        _, body = await self.b.expect(P.CANCEL)
        self.assertEqual(body["ids"], [31])
        self.b.send(peer, P.CANCEL_REP, {"rid": body["rid"], "items": [[31, 0]]})
        self.assertEqual(await asyncio.wait_for(cancelling, 5), "removed")
        self.b.send(peer, P.RESULTS, {"results": [result(31, st=P.ST_CANCELLED, ref=job.ref)]})
        with self.assertRaises(qjob.JobCancelled):
            await asyncio.wait_for(job, 5)

    async def test_heartbeat_when_idle(self):
        c, peer, _ = await self.client(hb=100, live=50)
        t0 = time.monotonic()
        for _ in range(3):
            await self.b.expect(P.HEARTBEAT, skip=())
        self.assertLess(time.monotonic() - t0, 2)

    async def test_error_hello_says_hello_again_and_resends(self):
        c, peer, hello = await self.client()
        done = c.submit_nowait("echo")
        _, _ = await self.b.expect(P.SUBMIT)
        self.b.send(peer, P.ACCEPTED, {"acks": [[done.ref, 40]]})
        await asyncio.wait_for(done.accepted(), 5)
        pending = c.submit_nowait("echo", n=1)
        _, sub = await self.b.expect(P.SUBMIT)
        stats = asyncio.ensure_future(c.stats())
        _, st = await self.b.expect(P.STATS)
        # the broker restarted: it refuses both, once each
        for about in (P.SUBMIT, P.STATS):
            self.b.send(peer, P.ERROR, {"code": P.E_HELLO, "text": "hello first",
                                        "about": about})
        _, hello2 = await self.b.expect(P.HELLO)
        self.assertEqual(hello2["cid"], hello["cid"])
        _, sub2 = await self.b.expect(P.SUBMIT)
        self.assertEqual(sub2, sub)                        # same ref, same bytes
        _, aw = await self.b.expect(P.AWAIT)
        self.assertEqual(aw["ids"], [40])
        _, st2 = await self.b.expect(P.STATS)
        self.assertEqual(st2["rid"], st["rid"])
        await self.b.nothing(0.2)                          # one HELLO, not two
        self.b.send(peer, P.WELCOME, {"hb": 1000, "live": 3, "maxmsg": P.MAX_MSG})
        self.b.send(peer, P.ACCEPTED, {"acks": [[pending.ref, 41]]})
        self.b.send(peer, P.STATS_REP, {"rid": st["rid"], "clients": 1})
        self.assertEqual((await asyncio.wait_for(stats, 5))["clients"], 1)
        self.assertEqual(await asyncio.wait_for(pending.accepted(), 5), 41)

    async def test_silence_reconnects_with_the_same_cid(self):
        c, peer, hello = await self.client(hb=100, live=3)
        pending = c.submit_nowait("echo")
        await self.b.expect(P.SUBMIT)
        waited = c.attach(99)
        await self.b.expect(P.AWAIT)
        t0 = time.monotonic()
        peer2, hello2 = await self.b.expect(P.HELLO, timeout=3)   # nothing answered
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)
        self.assertNotEqual(peer2, peer)                           # a new socket
        self.assertEqual(hello2["cid"], hello["cid"])
        _, sub = await self.b.expect(P.SUBMIT)
        self.assertEqual(sub["jobs"][0]["ref"], pending.ref)
        _, aw = await self.b.expect(P.AWAIT)
        self.assertEqual(aw["ids"], [99])
        self.assertEqual(c.reconnects, 1)
        # the result of the resent job comes before its ACCEPTED: still taken
        self.b.send(peer2, P.WELCOME, {"hb": 1000, "live": 3, "maxmsg": P.MAX_MSG})
        self.b.send(peer2, P.RESULTS, {"results": [result(123, "late", ref=pending.ref),
                                                   result(99, "w")]})
        self.assertEqual(await asyncio.wait_for(pending, 5), "late")
        self.assertEqual(pending.id, 123)
        self.assertEqual(await asyncio.wait_for(waited, 5), "w")
        self.b.send(peer2, P.ACCEPTED, {"acks": [[pending.ref, 123]]})  # duplicate: ignored
        await asyncio.sleep(0.05)

    async def test_curve(self):
        secure = FakeBroker(curve=True)
        try:
            public, secret = zmq.curve_keypair()
            c = qjob.Client(secure.endpoint, curve_server_key=secure.public.decode(),
                            curve_public_key=public, curve_secret_key=secret)
            connecting = asyncio.ensure_future(c.connect())
            await secure.welcome()
            await asyncio.wait_for(connecting, 5)
            await c.close()
            # the wrong server key: the handshake fails, no HELLO gets through
            wrong = qjob.Client(secure.endpoint, curve_server_key=zmq.curve_keypair()[0],
                                connect_timeout=0.5)
            connecting = asyncio.ensure_future(wrong.connect())
            await secure.nothing(0.7, skip=(P.BYE,))   # (the BYE of the first client)
            with self.assertRaises(qjob.BrokerUnreachable):
                await asyncio.wait_for(connecting, 5)
            with self.assertRaises(ValueError):
                qjob.Client(secure.endpoint, curve_server_key="short")
            with self.assertRaises(ValueError):
                qjob.Client(secure.endpoint, curve_public_key=public, curve_secret_key=secret)
        finally:
            secure.close()

    async def test_bye_from_the_broker_reconnects_at_once(self):
        c, peer, hello = await self.client()
        pending = c.submit_nowait("echo")
        await self.b.expect(P.SUBMIT)
        self.b.send(peer, P.BYE, {})
        peer2, hello2 = await self.b.expect(P.HELLO, timeout=1)
        self.assertNotEqual(peer2, peer)
        self.assertEqual(hello2["cid"], hello["cid"])
        _, sub = await self.b.expect(P.SUBMIT)
        self.assertEqual(sub["jobs"][0]["ref"], pending.ref)

    async def test_a_busy_loop_is_not_silence(self):
        """Heartbeats that wait unread while the loop is busy count."""
        c, peer, _ = await self.client(hb=100, live=3)
        for _ in range(5):
            self.b.send(peer, P.HEARTBEAT, {})
            time.sleep(0.1)           # blocks the loop: nothing is read meanwhile
        await self.b.nothing(0.1, skip=(P.HEARTBEAT,))
        self.assertEqual(c.reconnects, 0)

    async def test_malformed_frames_are_dropped(self):
        c, peer, _ = await self.client()
        job = c.attach(3)
        await self.b.expect(P.AWAIT)
        for bad in (b"", b"QJ\x02\x13\x80", b"QJ\x01\x13\x81\xa7results\xdd\xff\xff\xff\xff",
                    P.encode(P.JOBS, {"jobs": []})):
            self.b.send_raw(peer, bad)
        self.b.sock.send_multipart([peer, P.encode(P.HEARTBEAT, {}), b"x"])
        self.b.send(peer, P.RESULTS, {"results": [result(3, "fine")]})
        self.assertEqual(await asyncio.wait_for(job, 5), "fine")
        self.assertEqual(c.bad_frames, 5)

    async def test_blocking_client(self):
        """qjob.blocking runs its own loop in a thread; here its calls run in
        executor threads while this loop plays the broker."""
        loop = asyncio.get_running_loop()

        def call(fn, *args, **kwargs):
            return asyncio.wait_for(loop.run_in_executor(None, lambda: fn(*args, **kwargs)), 10)

        connecting = call(qjob.blocking.Client, self.b.endpoint, name="blocking")
        peer, hello = await self.b.welcome()
        c = await connecting
        try:
            self.assertEqual(hello["name"], "blocking")
            submitting = asyncio.ensure_future(call(c.submit, "echo", x=1))
            _, body = await self.b.expect(P.SUBMIT)
            ref = body["jobs"][0]["ref"]
            self.b.send(peer, P.ACCEPTED, {"acks": [[ref, 70]]})
            job = await submitting
            self.assertEqual((job.id, job.task, job.done()), (70, "echo", False))
            with self.assertRaises(TimeoutError):
                await call(job.get, timeout=0.05)
            getting = asyncio.ensure_future(call(job.get))
            self.b.send(peer, P.RESULTS, {"results": [result(70, {"x": 1}, ref=ref)]})
            self.assertEqual(await getting, {"x": 1})
            self.assertEqual(job.outcome.status, "ok")

            attached = await call(c.attach, 71)
            await self.b.expect(P.AWAIT)
            self.b.send(peer, P.RESULTS, {"results": [result(71, st=P.ST_LOST)]})
            with self.assertRaises(qjob.JobLost):
                await call(attached.get)

            stats = asyncio.ensure_future(call(c.stats))
            _, body = await self.b.expect(P.STATS)
            self.b.send(peer, P.STATS_REP, {"rid": body["rid"], "done": 3})
            self.assertEqual((await stats)["done"], 3)
        finally:
            await call(c.close)
        with self.assertRaises(qjob.ClientClosed):
            c.submit_nowait("echo")

    async def test_close_says_bye_and_releases_waiters(self):
        c, peer, _ = await self.client()
        job = c.attach(3)
        await self.b.expect(P.AWAIT)
        waiting = asyncio.ensure_future(job.wait())
        await asyncio.sleep(0.01)
        await c.close()
        await self.b.expect(P.BYE)
        with self.assertRaises(qjob.ClientClosed):
            await asyncio.wait_for(waiting, 5)
        with self.assertRaises(qjob.ClientClosed):
            await c.stats()


if __name__ == "__main__":
    unittest.main(verbosity=2)
