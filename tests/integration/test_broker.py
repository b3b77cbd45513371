"""qbroker against fake clients and workers that speak the wire protocol
(wire.py) directly: every rule of PROTOCOL.md §4 the broker enforces, and
malformed input of every kind.  No qworker or qclient is involved."""
import os
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zmq  # noqa: E402

import harness  # noqa: E402
import wire  # noqa: E402
from wire import CLIENT, WORKER  # noqa: E402


class Peer:
    """A fake client or worker: one DEALER, and what it has been sent."""

    def __init__(self, endpoint, role, name, **hello):
        self.role = role
        self.sock = wire.connect(endpoint)
        self.cid = hello.pop("cid", wire.new_cid() if role == CLIENT else None)
        self.welcome = wire.hello(self.sock, role, cid=self.cid, name=name, **hello)
        self.inbox = []   # (cmd, body) not yet taken
        self.last_send = time.monotonic()

    def send(self, frame):
        self.sock.send(frame)
        self.last_send = time.monotonic()

    def pump(self, alive=()):
        """Read what is waiting into the inbox; heartbeat for peers in alive."""
        while self.sock.poll(0):
            cmd, body = wire.decode(self.sock.recv())
            if cmd != wire.HEARTBEAT:
                self.inbox.append((cmd, body))
        for p in alive:
            if time.monotonic() - p.last_send > 0.05:
                p.send(wire.heartbeat())

    def take(self, cmd, n=1, timeout=5.0, alive=()):
        """Wait for n messages of cmd; return their bodies (others stay)."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            self.pump(alive)
            for item in list(self.inbox):
                if item[0] == cmd and len(got) < n:
                    got.append(item[1])
                    self.inbox.remove(item)
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("%s: %d of %d %s within %.1fs (inbox %r)" % (
                    self.role, len(got), n, wire.COMMANDS[cmd], timeout, self.inbox[:5]))
            self.sock.poll(10)

    def items(self, cmd, key, n, timeout=5.0, alive=()):
        """Collect n items of the list `key` from messages of cmd."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("got %d of %d %s items" % (len(out), n, key))
            out += self.take(cmd, 1, left, alive)[0][key]
        return out

    def nothing(self, cmd, seconds, alive=()):
        """Assert that no message of cmd arrives for that long."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump(alive)
            if any(c == cmd for c, _ in self.inbox):
                raise AssertionError("unexpected %s: %r" % (wire.COMMANDS[cmd], self.inbox))
            self.sock.poll(10)

    def close(self):
        self.sock.close(0)


class BrokerTest(harness.ClusterTest):
    broker_args = ()

    def setUp(self):
        super().setUp()
        self.peers = []
        self.c.start_broker(*self.broker_args)
        self.ep = self.c.endpoint

    def tearDown(self):
        for p in self.peers:
            p.close()
        # Every test ends with a clean shutdown: exit 0, which under ASan and
        # UBSan (halt_on_error) also means no leak and no undefined behaviour.
        # (Signalled here rather than with Proc.stop, which closes the log
        # that the harness prints when a test fails.)
        b, rc = self.c.broker, 0
        if b and b.alive():
            b.signal(signal.SIGTERM)
            try:
                rc = b.p.wait(10)
            except subprocess.TimeoutExpired:
                rc = "nothing (still running after SIGTERM)"
        elif b:
            rc = b.p.returncode
        out = b.output() if b else ""
        super().tearDown()
        self.assertEqual(rc, 0, "qbroker exited %s:\n%s" % (rc, out[-4000:]))

    def client(self, name="client", **kw):
        p = Peer(self.ep, CLIENT, name, **kw)
        self.peers.append(p)
        return p

    def worker(self, credit, name="worker", **kw):
        p = Peer(self.ep, WORKER, name, credit=credit, **kw)
        self.peers.append(p)
        return p

    def submit(self, client, jobs):
        client.send(wire.submit(jobs))
        return client.items(wire.ACCEPTED, "acks", len(jobs))

    def ids(self, client, jobs):
        acks = self.submit(client, jobs)
        for a in acks:
            self.assertEqual(len(a), 2, "refused: %r" % (a,))
        return [a[1] for a in acks]

    def stats(self):
        s = self.c.stats()
        self.assertIsNotNone(s, "broker did not answer STATS")
        return s

    def queue_stats(self, name="default"):
        return next(q for q in self.stats()["queues"] if q["name"] == name)

    def finish(self, worker, jobs, st=wire.ST_OK, credit=None, **kw):
        worker.send(wire.results(
            [wire.result(j["id"], st, val=j.get("args"), t=[0, 0, 0, 1000, 3000], **kw)
             for j in jobs], credit=len(jobs) if credit is None else credit))


class RoundTrip(BrokerTest):
    def test_submit_dispatch_result(self):
        c = self.client()
        w = self.worker(2, name="w1")
        self.assertEqual(w.welcome["hb"], 1000)
        self.assertEqual(w.welcome["live"], 3)
        self.assertEqual(w.welcome["maxmsg"], 8 * 1024 * 1024)
        args = wire.pack({"x": 1})
        [jid] = self.ids(c, [wire.job(7, "echo", args=args, timeout=500, ts=123)])
        self.assertGreater(jid, (int(time.time() * 1000) - 60000) << 16)
        [j] = w.items(wire.JOBS, "jobs", 1)
        self.assertEqual((j["id"], j["task"], j["args"], j["q"], j["attempt"], j["timeout"]),
                         (jid, "echo", args, "default", 1, 500))
        self.assertEqual(j["ts"], 123)
        self.finish(w, [j])
        [r] = c.items(wire.RESULTS, "results", 1)
        self.assertEqual((r["id"], r["ref"], r["st"], r["att"], r["wk"]), (jid, 7, 0, 1, "w1"))
        self.assertEqual(wire.unpack(r["val"]), {"x": 1})
        self.assertEqual(r["t"][3:], [1000, 3000])
        self.assertGreater(r["t"][1], 0)
        s = self.stats()
        self.assertEqual((s["submitted"], s["done"], s["workers"], s["kept"]), (1, 1, 1, 1))
        q = self.queue_stats()
        self.assertEqual((q["submitted"], q["done"], q["depth"], q["running"]), (1, 1, 0, 0))
        self.assertEqual(q["compute_us"], 2000)
        self.assertGreater(q["comm_us"], 0)
        self.assertEqual(s["wlist"][0]["name"], "w1")
        self.assertEqual(s["wlist"][0]["done"], 1)

    def test_comm_and_compute_by_submit_size(self):
        c = self.client()
        w = self.worker(20, name="w1")
        # Submitted at unix time 1 us, so that their life is long.
        self.ids(c, [wire.job(1, "t", ts=1)])
        self.ids(c, [wire.job(2 + i, "t", ts=1) for i in range(8)])
        self.ids(c, [wire.job(10 + i, "t", ts=1) for i in range(3)])
        jobs = w.items(wire.JOBS, "jobs", 12)
        self.finish(w, jobs)   # each ran 2000 us
        c.items(wire.RESULTS, "results", 12)
        q = self.queue_stats()
        self.assertEqual(q["b_jobs"], [1, 3, 0, 8] + [0] * 9)
        self.assertEqual(q["b_compute_us"], [2000, 6000, 0, 16000] + [0] * 9)
        self.assertEqual([q["b_comm_us"][i] > 0 for i in range(4)], [True, True, False, True])
        self.assertEqual((sum(q["b_comm_us"]), sum(q["b_compute_us"])),
                         (q["comm_us"], q["compute_us"]))

    def test_stats_has_every_figure(self):
        s = self.stats()
        for k in ("uptime", "clients", "workers", "submitted", "done", "failed", "retried",
                  "lost", "cancelled", "bad", "bad_by", "rejected", "kept", "rss", "queues",
                  "wlist"):
            self.assertIn(k, s)
        self.assertGreater(s["rss"], 1 << 20)
        self.client()
        self.ids(self.peers[0], [wire.job(1, "t")])
        q = self.queue_stats()
        for k in ("name", "depth", "delayed", "running", "workers", "submitted", "done",
                  "failed", "retried", "dead", "comm_us", "compute_us"):
            self.assertIn(k, q)
        self.assertEqual(q["depth"], 1)

    def test_priorities_then_fifo(self):
        c = self.client()
        pris = [0, 5, -3, 5, 0, 127, -128, 5, 0]
        ids = self.ids(c, [wire.job(i + 1, "t", pri=p) for i, p in enumerate(pris)])
        w = self.worker(1)
        order = []
        for _ in pris:
            [j] = w.items(wire.JOBS, "jobs", 1)
            order.append(j["id"])
            self.finish(w, [j])
        want = [ids[i] for i in sorted(range(len(pris)), key=lambda i: (-pris[i], i))]
        self.assertEqual(order, want)

    def test_named_queues(self):
        c = self.client()
        [a] = self.ids(c, [wire.job(1, "t", q="alpha")])
        [b] = self.ids(c, [wire.job(2, "t", q="beta")])
        wb = self.worker(5, queues=["beta"])
        [j] = wb.items(wire.JOBS, "jobs", 1)
        self.assertEqual((j["id"], j["q"]), (b, "beta"))
        wb.nothing(wire.JOBS, 0.2)
        wa = self.worker(5, queues=["alpha", "beta"])
        [j] = wa.items(wire.JOBS, "jobs", 1)
        self.assertEqual((j["id"], j["q"]), (a, "alpha"))


class Credit(BrokerTest):
    def test_credit_never_exceeded(self):
        c = self.client()
        self.ids(c, [wire.job(i, "t") for i in range(1, 21)])
        w = self.worker(3)
        # The three it may take come packed in one JOBS.
        [first] = w.take(wire.JOBS, 1)
        self.assertEqual(len(first["jobs"]), 3)
        w.nothing(wire.JOBS, 0.2)
        held, seen = list(first["jobs"]), {j["id"] for j in first["jobs"]}
        for done in range(1, 21):
            self.finish(w, [held.pop(0)], credit=1)
            if done < 20 and not held:
                held += w.items(wire.JOBS, "jobs", 1)
            w.pump()
            for cmd, body in [m for m in w.inbox if m[0] == wire.JOBS]:
                held += body["jobs"]
                w.inbox.remove((cmd, body))
            seen |= {j["id"] for j in held}
            self.assertLessEqual(len(held), 3)
        self.assertEqual(len(seen), 20)
        # Its 3 credits are back: 3 of 5 new jobs go; CREDIT 2 lets the rest go.
        self.ids(c, [wire.job(i, "t") for i in range(100, 105)])
        self.assertEqual(len(w.items(wire.JOBS, "jobs", 3)), 3)
        w.nothing(wire.JOBS, 0.2)
        w.send(wire.credit(2))
        self.assertEqual(len(w.items(wire.JOBS, "jobs", 2)), 2)
        w.nothing(wire.JOBS, 0.2)
        self.assertEqual(self.queue_stats()["running"], 5)

    def test_least_loaded_worker(self):
        c = self.client()
        w1 = self.worker(4, name="w1")
        self.ids(c, [wire.job(i, "t") for i in range(1, 4)])
        self.assertEqual(len(w1.items(wire.JOBS, "jobs", 3)), 3)
        w2 = self.worker(4, name="w2")
        # w1 has 1 of 4 free, w2 4 of 4: the next three go to w2.
        self.ids(c, [wire.job(i, "t") for i in range(10, 13)])
        self.assertEqual(len(w2.items(wire.JOBS, "jobs", 3)), 3)
        w1.nothing(wire.JOBS, 0.2)

    def test_idle_slot_before_a_busy_workers_prefetch(self):
        # w1 once granted 100 (tiny jobs: much prefetch) and now grants 1
        # (its jobs grew long): idle all the same.  w2 runs a job with one
        # more held back.  Of two jobs, one each: neither waits behind a
        # busy slot while another is free.
        c = self.client()
        w1 = self.worker(100, name="w1")
        self.ids(c, [wire.job(i, "t") for i in range(1, 100)])
        self.finish(w1, w1.items(wire.JOBS, "jobs", 99), credit=0)
        w2 = self.worker(2, name="w2")
        ids = self.ids(c, [wire.job(200, "t")]) + self.ids(c, [wire.job(201, "t")])
        a = w1.items(wire.JOBS, "jobs", 1)
        b = w2.items(wire.JOBS, "jobs", 1)
        self.assertEqual(sorted(j["id"] for j in a + b), sorted(ids))
        w1.nothing(wire.JOBS, 0.2)
        w2.nothing(wire.JOBS, 0.2)

    def test_ties_round_robin(self):
        c = self.client()
        w1 = self.worker(10, name="w1")
        w2 = self.worker(10, name="w2")
        self.ids(c, [wire.job(i, "t") for i in range(1, 11)])
        a = w1.items(wire.JOBS, "jobs", 5)
        b = w2.items(wire.JOBS, "jobs", 5)
        self.assertEqual((len(a), len(b)), (5, 5))
        time.sleep(0.1)
        w1.pump()
        w2.pump()
        self.assertEqual([x for x in w1.inbox + w2.inbox if x[0] == wire.JOBS], [])


class Results(BrokerTest):
    def test_kept_and_awaited_from_another_connection(self):
        a = self.client(name="a")
        w = self.worker(1)
        [jid] = self.ids(a, [wire.job(1, "echo", args=wire.pack([1, 2]), detach=True)])
        self.finish(w, w.items(wire.JOBS, "jobs", 1))
        a.nothing(wire.RESULTS, 0.3)          # detached: nothing pushed
        b = self.client(name="b")
        b.send(wire.await_([jid]))
        [r] = b.items(wire.RESULTS, "results", 1)
        self.assertEqual((r["id"], r["st"], wire.unpack(r["val"])), (jid, 0, [1, 2]))
        self.assertNotIn("ref", r)             # b did not submit it
        st = wire.request(b.sock, wire.STATUS, ids=[jid])["jobs"][0]
        self.assertEqual((st["state"], st["st"], st["q"], st["task"]),
                         (wire.STATE_DONE, 0, "default", "echo"))

    def test_await_before_the_end(self):
        a = self.client(name="a")
        b = self.client(name="b")
        w = self.worker(1)
        [jid] = self.ids(a, [wire.job(1, "t")])
        [j] = w.items(wire.JOBS, "jobs", 1)
        b.send(wire.await_([jid, jid]))        # twice: one result
        st = wire.request(b.sock, wire.STATUS, ids=[jid])["jobs"][0]
        self.assertEqual(st["state"], wire.STATE_RUNNING)
        self.assertNotIn("st", st)
        b.nothing(wire.RESULTS, 0.2)
        self.finish(w, [j])
        self.assertEqual([r["id"] for r in b.items(wire.RESULTS, "results", 1)], [jid])
        self.assertEqual([r["ref"] for r in a.items(wire.RESULTS, "results", 1)], [1])
        b.nothing(wire.RESULTS, 0.2)

    def test_unknown_id(self):
        c = self.client()
        c.send(wire.await_([12345]))
        [r] = c.items(wire.RESULTS, "results", 1, timeout=2)
        self.assertEqual((r["id"], r["st"]), (12345, wire.ST_UNKNOWN))
        st = wire.request(c.sock, wire.STATUS, ids=[12345])["jobs"][0]
        self.assertEqual(st["state"], wire.STATE_UNKNOWN)

    def test_results_follow_the_cid(self):
        c = self.client()
        w = self.worker(2)
        [j1, j2] = self.ids(c, [wire.job(1, "t"), wire.job(2, "t")])
        got = w.items(wire.JOBS, "jobs", 2)
        # A new connection with the same cid: results go there.
        c2 = self.client(cid=c.cid)
        self.finish(w, [x for x in got if x["id"] == j1])
        [r] = c2.items(wire.RESULTS, "results", 1)
        self.assertEqual((r["id"], r["ref"]), (j1, 1))
        # Gone altogether: the result waits for the cid to come back.
        c2.close()
        time.sleep(0.3)
        self.finish(w, [x for x in got if x["id"] == j2])
        time.sleep(0.3)
        c3 = self.client(cid=c.cid)
        [r] = c3.items(wire.RESULTS, "results", 1)
        self.assertEqual((r["id"], r["ref"]), (j2, 2))

    def test_duplicates_by_ref_and_key(self):
        c = self.client()
        [a] = self.ids(c, [wire.job(1, "t")])
        [again] = self.ids(c, [wire.job(1, "t")])
        self.assertEqual(a, again)
        c2 = self.client(cid=c.cid)             # a resend after a reconnect
        self.assertEqual(self.ids(c2, [wire.job(1, "t")]), [a])
        other = self.client()
        [k] = self.ids(c2, [wire.job(2, "t", key="order-9")])
        self.assertEqual(self.ids(other, [wire.job(1, "t", key="order-9")]), [k])
        self.assertNotEqual(self.ids(other, [wire.job(2, "t")]), [a])
        self.assertEqual(self.stats()["submitted"], 3)

    def test_progress(self):
        c = self.client()
        w = self.worker(1)
        [jid] = self.ids(c, [wire.job(1, "t", progress=True)])
        [j] = w.items(wire.JOBS, "jobs", 1)
        w.send(wire.progress(jid, 3, 10, note="a third"))
        [p] = c.take(wire.PROGRESS)
        self.assertEqual((p["id"], p["done"], p["total"], p["note"]), (jid, 3, 10, "a third"))
        st = wire.request(c.sock, wire.STATUS, ids=[jid])["jobs"][0]
        self.assertEqual(st["prog"], [3, 10, "a third"])
        self.finish(w, [j])


class MaxResults(BrokerTest):
    broker_args = ("--max-results", "2")

    def test_max_results(self):
        c = self.client()
        w = self.worker(5)
        ids = self.ids(c, [wire.job(i, "t") for i in range(1, 4)])
        for j in w.items(wire.JOBS, "jobs", 3):
            self.finish(w, [j])
            c.items(wire.RESULTS, "results", 1)   # pushed before it is dropped
        c.send(wire.await_(ids))
        got = {r["id"]: r["st"] for r in c.items(wire.RESULTS, "results", 3)}
        self.assertEqual(sorted(got.values()), [0, 0, wire.ST_UNKNOWN])
        self.assertEqual(self.stats()["kept"], 2)


class Cancel(BrokerTest):
    def test_cancel_queued_running_done_unknown(self):
        c = self.client()
        [q1, q2] = self.ids(c, [wire.job(1, "t"), wire.job(2, "t")])
        rep = wire.request(c.sock, wire.CANCEL, ids=[q1])
        self.assertEqual(rep["items"], [[q1, wire.CANCEL_REMOVED]])
        [r] = c.items(wire.RESULTS, "results", 1)
        self.assertEqual((r["id"], r["st"], r["ref"]), (q1, wire.ST_CANCELLED, 1))
        w = self.worker(1)
        [j] = w.items(wire.JOBS, "jobs", 1)
        self.assertEqual(j["id"], q2)
        rep = wire.request(c.sock, wire.CANCEL, ids=[q2, q1, 999])
        self.assertEqual(rep["items"], [[q2, wire.CANCEL_REQUESTED], [q1, wire.CANCEL_DONE],
                                        [999, wire.CANCEL_UNKNOWN]])
        [cw] = w.take(wire.CANCEL)
        self.assertEqual(cw["ids"], [q2])
        self.assertNotIn("rid", cw)
        self.finish(w, [j], st=wire.ST_CANCELLED)
        [r] = c.items(wire.RESULTS, "results", 1)
        self.assertEqual((r["id"], r["st"]), (q2, wire.ST_CANCELLED))
        self.assertEqual(self.stats()["cancelled"], 2)

    def test_cancel_delayed(self):
        c = self.client()
        at = int((time.time() + 60) * 1e6)
        [jid] = self.ids(c, [wire.job(1, "t", at=at)])
        self.assertEqual(self.queue_stats()["delayed"], 1)
        rep = wire.request(c.sock, wire.CANCEL, ids=[jid])
        self.assertEqual(rep["items"], [[jid, wire.CANCEL_REMOVED]])
        self.assertEqual(self.queue_stats()["delayed"], 0)


class WorkerDeath(BrokerTest):
    """A 100 ms heartbeat, so that silent workers die fast.  Clients ask
    for a slow one (they do not heartbeat while the test waits)."""
    broker_args = ("--heartbeat", "100")

    def client(self, name="client", **kw):
        return super().client(name, hb=kw.pop("hb", 60000), **kw)

    def test_silent_worker_jobs_go_to_another(self):
        c = self.client()
        w1 = self.worker(2, name="w1")
        ids = self.ids(c, [wire.job(1, "t"), wire.job(2, "t")])
        self.assertEqual(len(w1.items(wire.JOBS, "jobs", 2)), 2)
        w2 = self.worker(2, name="w2")
        # w1 says nothing more; w2 heartbeats.  After 3 x 100 ms w1 is dead.
        got = w2.items(wire.JOBS, "jobs", 2, timeout=5, alive=[w2])
        self.assertEqual(sorted(j["id"] for j in got), sorted(ids))
        self.assertEqual([j["attempt"] for j in got], [2, 2])
        self.finish(w2, got)
        rs = c.items(wire.RESULTS, "results", 2)
        self.assertEqual([r["att"] for r in rs], [2, 2])
        s = self.stats()
        self.assertEqual(s["workers"], 1)
        self.assertEqual(s["retried"], 2)
        self.assertIn("worker w1 died", self.c.broker.output())
        # A late result from the dead worker is ignored.
        self.finish(w1, [{"id": ids[0]}])
        self.assertEqual(self.stats()["done"], 2)

    def test_closed_worker(self):
        c = self.client()
        w1 = self.worker(1, name="w1")
        [jid] = self.ids(c, [wire.job(1, "t")])
        w1.items(wire.JOBS, "jobs", 1)
        w1.close()
        w2 = self.worker(1, name="w2")
        [j] = w2.items(wire.JOBS, "jobs", 1, timeout=5, alive=[w2])
        self.assertEqual((j["id"], j["attempt"]), (jid, 2))

    def test_lost_on_every_attempt(self):
        c = self.client()
        [jid] = self.ids(c, [wire.job(1, "t")])
        for attempt in (1, 2, 3):               # --lost-attempts defaults to 3
            w = self.worker(1, name="w%d" % attempt)
            [j] = w.items(wire.JOBS, "jobs", 1)
            self.assertEqual(j["attempt"], attempt)
            w.close()
        [r] = c.items(wire.RESULTS, "results", 1, timeout=5)
        self.assertEqual((r["id"], r["st"], r["att"]), (jid, wire.ST_LOST, 3))
        self.assertIn("died", r["err"])
        dead = wire.request(c.sock, wire.DEAD)["jobs"]
        self.assertEqual([d["id"] for d in dead], [jid])
        self.assertEqual(self.stats()["lost"], 1)

    def test_bye_requeues_without_an_attempt(self):
        c = self.client()
        w1 = self.worker(1, name="w1")
        [jid] = self.ids(c, [wire.job(1, "t")])
        w1.items(wire.JOBS, "jobs", 1)
        w1.send(wire.bye())
        w2 = self.worker(1, name="w2")
        [j] = w2.items(wire.JOBS, "jobs", 1)
        self.assertEqual((j["id"], j["attempt"]), (jid, 1))

    def test_drain(self):
        c = self.client()
        w1 = self.worker(1, name="w1")
        [a] = self.ids(c, [wire.job(1, "t")])
        [j] = w1.items(wire.JOBS, "jobs", 1)    # its only credit
        w1.send(wire.bye(drain=True))
        w1.send(wire.credit(3))                 # after the BYE: ignored
        self.ids(c, [wire.job(2, "t")])
        w1.nothing(wire.JOBS, 0.3, alive=[w1])
        self.finish(w1, [j])
        [r] = c.items(wire.RESULTS, "results", 1)
        self.assertEqual((r["id"], r["st"]), (a, 0))
        self.assertEqual(self.queue_stats()["depth"], 1)

    def test_client_hears_heartbeats(self):
        c = self.client(hb=0)
        self.assertEqual(c.welcome["hb"], 100)
        self.assertEqual(wire.expect(c.sock, wire.HEARTBEAT, timeout=1, skip=()), {})


class Retries(BrokerTest):
    def test_retry_dead_letter_requeue(self):
        c = self.client()
        w = self.worker(1)
        [jid] = self.ids(c, [wire.job(1, "flaky", retries=1, backoff=600)])
        [j] = w.items(wire.JOBS, "jobs", 1)
        self.finish(w, [j], st=wire.ST_ERROR, err="boom 1")
        t0 = time.monotonic()
        # (The worker's RESULTS and this STATUS travel on two connections.)
        harness.wait_for(lambda: wire.request(c.sock, wire.STATUS, ids=[jid])["jobs"][0]
                         ["state"] == wire.STATE_DELAYED, timeout=0.5, what="delayed retry")
        [j] = w.items(wire.JOBS, "jobs", 1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)
        self.assertEqual(j["attempt"], 2)
        self.finish(w, [j], st=wire.ST_ERROR, err="boom 2")
        [r] = c.items(wire.RESULTS, "results", 1)
        self.assertEqual((r["id"], r["st"], r["err"], r["att"]), (jid, wire.ST_ERROR, "boom 2", 2))
        q = self.queue_stats()
        self.assertEqual((q["retried"], q["failed"], q["dead"]), (1, 1, 1))
        dead = wire.request(c.sock, wire.DEAD, q="default")["jobs"]
        self.assertEqual([(d["id"], d["state"], d["task"]) for d in dead],
                         [(jid, wire.STATE_DEAD, "flaky")])
        self.assertEqual(wire.request(c.sock, wire.DEAD, q="other")["jobs"], [])
        rep = wire.request(c.sock, wire.REQUEUE, ids=[jid, 4242])
        self.assertEqual(rep["items"], [[jid, 0], [4242, 3]])
        [j] = w.items(wire.JOBS, "jobs", 1)
        self.assertEqual((j["id"], j["attempt"]), (jid, 1))
        c.send(wire.await_([jid]))
        self.finish(w, [j])
        [r] = c.items(wire.RESULTS, "results", 1)
        self.assertEqual((r["id"], r["st"]), (jid, 0))
        self.assertEqual(wire.request(c.sock, wire.DEAD)["jobs"], [])
        self.assertEqual(self.queue_stats()["dead"], 0)

    def test_timeout_is_final_not_dead(self):
        c = self.client()
        w = self.worker(1)
        [jid] = self.ids(c, [wire.job(1, "slow")])
        self.finish(w, w.items(wire.JOBS, "jobs", 1), st=wire.ST_TIMEOUT)
        [r] = c.items(wire.RESULTS, "results", 1)
        self.assertEqual(r["st"], wire.ST_TIMEOUT)
        self.assertEqual(wire.request(c.sock, wire.DEAD)["jobs"], [])

    def test_delayed_job(self):
        c = self.client()
        w = self.worker(1)
        at = int((time.time() + 0.5) * 1e6)
        [jid] = self.ids(c, [wire.job(1, "later", at=at)])
        st = wire.request(c.sock, wire.STATUS, ids=[jid])["jobs"][0]
        self.assertEqual(st["state"], wire.STATE_DELAYED)
        w.nothing(wire.JOBS, 0.25)
        [j] = w.items(wire.JOBS, "jobs", 1, timeout=5)
        self.assertGreaterEqual(time.time() * 1e6, at - 20000)
        self.assertEqual(j["id"], jid)


class Depth(BrokerTest):
    broker_args = ("--max-depth", "3", "--max-depth", "tiny=1")

    def test_refused_when_full_and_accepted_after_drain(self):
        c = self.client()
        acks = self.submit(c, [wire.job(i, "t") for i in range(1, 5)])
        self.assertEqual([len(a) for a in acks], [2, 2, 2, 4])
        ref, jid, code, text = acks[3]
        self.assertEqual((ref, jid, code), (4, 0, wire.E_QUEUE_FULL))
        self.assertIn("'default'", text)
        self.assertIn("3", text)
        [ack] = self.submit(c, [wire.job(10, "t", q="tiny")])
        [ack] = self.submit(c, [wire.job(11, "t", q="tiny")])
        self.assertEqual(ack[2], wire.E_QUEUE_FULL)
        self.assertIn("'tiny'", ack[3])
        self.assertIn("refused 1 of 4", self.c.broker.output())
        w = self.worker(5)
        self.finish(w, w.items(wire.JOBS, "jobs", 3))
        self.assertEqual(len(self.ids(c, [wire.job(5, "t")])), 1)


class Malformed(BrokerTest):
    def raw(self):
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.ep)
        self.addCleanup(s.close, 0)
        return s

    def answer(self, sock, frames):
        sock.send_multipart(frames) if isinstance(frames, list) else sock.send(frames)
        return wire.expect(sock, wire.ERROR, timeout=3, skip=(wire.HEARTBEAT,))

    def test_every_kind_is_answered_and_counted(self):
        sub = wire.encode(wire.SUBMIT, {"jobs": [{"ref": 1, "task": "t"}]})
        cases = [
            (b"", wire.E_FRAME),
            (b"QJ\x01", wire.E_FRAME),
            (os.urandom(64).replace(b"Q", b"q"), wire.E_FRAME),
            (b"XJ\x01\x01\x80", wire.E_FRAME),
            (b"QJ\x02\x01\x80", wire.E_VERSION),
            (b"QJ\x01\x7f\x80", wire.E_COMMAND),
            (sub[:-3], wire.E_BODY),                                   # truncated msgpack
            (b"QJ\x01\x10\xdd\xff\xff\xff\xff", wire.E_BODY),          # array32 of 2^32
            (b"QJ\x01\x10" + b"\x91" * 40 + b"\xc0", wire.E_BODY),     # nested too deep
            (wire.encode(wire.SUBMIT, None) + b"\x00", wire.E_BODY),   # trailing byte
            (b"QJ\x01\x10\x93\x01\x02\x03", wire.E_BODY),              # body not a map
            (wire.encode(wire.HELLO, {"role": "worker"}), wire.E_BODY),  # wrong type
            (wire.encode(wire.HELLO, {"role": 0}), wire.E_BODY),       # client without cid
            (wire.encode(wire.SUBMIT, {"jobs": []}), wire.E_LIMIT),
            (wire.encode(wire.SUBMIT, {"jobs": [{"ref": 1, "task": "x" * 129}]}), wire.E_LIMIT),
            ([wire.stats(1), b"more"], wire.E_FRAME),                 # two frames
        ]
        s = self.raw()
        c = self.client()
        for frame, code in cases:
            for sock in (s, c.sock):               # a stranger and a client that said HELLO
                err = self.answer(sock, frame)
                self.assertEqual(err["code"], code, "frame %r: %r" % (frame, err))
                self.assertTrue(err["text"])
        st = self.stats()
        self.assertEqual(st["bad"], 2 * len(cases))
        want = {}
        for _, code in cases:
            want[wire.ERRORS[code]] = want.get(wire.ERRORS[code], 0) + 2
        self.assertEqual(st["bad_by"], want)
        self.assertEqual(st["submitted"], 0)       # no state changed
        # ... and it keeps serving.
        w = self.worker(1)
        [jid] = self.ids(c, [wire.job(1, "t")])
        self.finish(w, w.items(wire.JOBS, "jobs", 1))
        self.assertEqual(c.items(wire.RESULTS, "results", 1)[0]["id"], jid)

    def test_bad_error_or_heartbeat_is_counted_not_answered(self):
        s = self.raw()
        s.send(b"QJ\x01\x05\xc1")                  # ERROR with a bad body
        s.send(b"QJ\x01\x03\x81\xa1")              # HEARTBEAT, truncated
        self.assertIsNone(wire.recv(s, 0.3))
        self.assertEqual(self.stats()["bad"], 2)

    def test_oversized_frame_drops_only_that_peer(self):
        c = self.client()
        big = self.raw()
        big.send(b"QJ\x01\x10" + b"\x00" * (9 * 1024 * 1024))
        time.sleep(0.3)
        self.assertTrue(self.c.broker.alive())
        w = self.worker(1)
        [jid] = self.ids(c, [wire.job(1, "t")])
        self.finish(w, w.items(wire.JOBS, "jobs", 1))
        self.assertEqual(c.items(wire.RESULTS, "results", 1)[0]["id"], jid)

    def test_hello_first(self):
        s = self.raw()
        for frame, cmd in ((wire.submit([wire.job(1, "t")]), wire.SUBMIT),
                           (wire.await_([1]), wire.AWAIT),
                           (wire.stats(9), wire.STATS)):
            err = self.answer(s, frame)
            self.assertEqual((err["code"], err["about"]), (wire.E_HELLO, cmd))
        self.assertEqual(err["rid"], 9)
        s.send(wire.heartbeat())                   # never answered
        s.send(wire.bye())
        self.assertIsNone(wire.recv(s, 0.3))
        st = self.stats()
        self.assertEqual((st["submitted"], st["bad"]), (0, 0))
        wire.hello(s, CLIENT)                      # then it works
        s.send(wire.submit([wire.job(1, "t")]))
        self.assertEqual(len(wire.expect(s, wire.ACCEPTED)["acks"][0]), 2)

    def test_roles(self):
        c = self.client()
        err = self.answer(c.sock, wire.results([wire.result(1, 0)]))
        self.assertEqual((err["code"], err["about"]), (wire.E_ROLE, wire.RESULTS))
        err = self.answer(c.sock, wire.jobs([]))
        self.assertEqual(err["code"], wire.E_ROLE)
        w = self.worker(1)
        [ack] = self.submit(w, [wire.job(1, "sub")])   # a worker without a parent
        self.assertEqual(ack[:3], [1, 0, wire.E_ROLE])
        [jid] = self.ids(c, [wire.job(1, "parent")])
        [j] = w.items(wire.JOBS, "jobs", 1)
        self.assertEqual(j["id"], jid)
        [ack] = self.submit(w, [wire.job(2, "sub", parent=jid, pri=9)])
        self.assertEqual(len(ack), 2)
        w.send(wire.credit(1))
        [sub] = w.items(wire.JOBS, "jobs", 1)
        self.assertEqual((sub["id"], sub["parent"]), (ack[1], jid))
        self.finish(w, [sub])
        [r] = w.items(wire.RESULTS, "results", 1)    # pushed to the worker that submitted it
        self.assertEqual((r["id"], r["ref"]), (ack[1], 2))


class Process(harness.ClusterTest):
    def run_broker(self, *args):
        return subprocess.run([harness.QBROKER] + list(args), capture_output=True, text=True,
                              timeout=20)

    def test_non_loopback_bind_refused(self):
        for ep in ("tcp://0.0.0.0:*", "tcp://*:*", "tcp://10.1.2.3:5555", "udp://127.0.0.1:1"):
            r = self.run_broker("--bind", ep)
            self.assertEqual(r.returncode, 1, ep)
            self.assertIn("--insecure", r.stderr)
            self.assertIn("refusing to bind", r.stderr)

    def test_usage_errors(self):
        for args in (["--heartbeat", "x"], ["--max-depth", "q="], ["--nope"], ["extra"]):
            r = self.run_broker(*args)
            self.assertEqual(r.returncode, 2, args)
        r = self.run_broker("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--max-depth", r.stdout)

    def test_tcp_endpoint_file_and_sigterm(self):
        self.c.tcp = True
        b = self.c.start_broker("--log-format", "json")
        self.assertRegex(self.c.endpoint, r"^tcp://127\.0\.0\.1:\d+$")
        p = Peer(self.c.endpoint, CLIENT, "c")
        try:
            b.signal(signal.SIGTERM)
            cmd, _ = wire.recv(p.sock, 5)
            while cmd == wire.HEARTBEAT:
                cmd, _ = wire.recv(p.sock, 5)
            self.assertEqual(cmd, wire.BYE)         # the broker says goodbye
            self.assertEqual(b.p.wait(10), 0)
        finally:
            p.close()
        self.assertIn('"msg":"shutting down', b.output())

    def test_sigint_exits_0(self):
        b = self.c.start_broker()
        b.signal(signal.SIGINT)
        self.assertEqual(b.p.wait(10), 0)


class Sizes(BrokerTest):
    def test_queued_job_memory(self):
        """A million queued 16-byte jobs and no worker: the broker's resident
        memory grows by at most 300 bytes a job."""
        with open(harness.QBROKER, "rb") as f:
            if b"__asan_init" in f.read():
                self.skipTest("resident memory means nothing under AddressSanitizer")
        c = self.client()
        before = self.stats()["rss"]
        n, batch, args = 1000000, 4096, wire.pack(b"x" * 14)
        accepted, sent = 0, 0
        for start in range(1, n + 1, batch):
            refs = range(start, min(start + batch, n + 1))
            c.send(wire.submit([{"ref": r, "task": "echo", "args": args} for r in refs]))
            sent += len(refs)
            while sent - accepted > 8 * batch:    # a bounded window, as clients keep
                accepted += len(c.take(wire.ACCEPTED)[0]["acks"])
        while accepted < n:
            accepted += len(c.take(wire.ACCEPTED, timeout=30)[0]["acks"])
        self.assertEqual(self.queue_stats()["depth"], n)
        per_job = (self.stats()["rss"] - before) / n
        self.assertLessEqual(per_job, 300, "%.0f bytes of RSS per queued job" % per_job)

    def test_big_batches_are_split(self):
        """4096 jobs of 1 KiB each come in, go out and come back: every frame
        stays under the 8 MiB limit the peers enforce."""
        c = self.client()
        w = self.worker(5000)
        args = wire.pack(b"x" * 1024)
        n = 4096
        ids = self.ids(c, [wire.job(i + 1, "t", args=args) for i in range(n)])
        got = w.items(wire.JOBS, "jobs", n, timeout=20)
        self.assertEqual(sorted(j["id"] for j in got), sorted(ids))
        big = wire.pack(b"v" * (700 * 1024))       # 700 KiB each: several RESULTS
        w.send(wire.results([wire.result(j["id"], 0, val=big) for j in got[:8]]))
        w.send(wire.results([wire.result(j["id"], 0, val=big) for j in got[8:16]]))
        rs = c.items(wire.RESULTS, "results", 16, timeout=20)
        self.assertEqual(len({r["id"] for r in rs}), 16)


if __name__ == "__main__":
    harness.main()
