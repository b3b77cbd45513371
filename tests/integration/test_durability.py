"""qbroker's journal (server/JOURNAL.md) with real processes: a broker killed
with SIGKILL while 10,000 jobs are submitted loses none that it acknowledged
and runs each to one result; jobs leased when it died are queued again; a
damaged record in the middle of the journal is reported and skipped (the
jobs it held, a SUBMIT's, are lost together), the others kept; a journal of
an older version is refused with a message; compaction keeps the journal
small and the live state whole; --max-memory refuses submits without
dropping any; SIGTERM makes the journal durable before the broker leaves."""
import json
import os
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import wire  # noqa: E402
from test_broker import Peer  # noqa: E402
from wire import CLIENT, WORKER  # noqa: E402

HEADER_LEN = 24      # segment header (JOURNAL.md §1.1)
RECORD_HEADER = 12   # record header (§2)
JOB = 1              # record type (§3)
VERSION = 2          # of the files (§1.1)


def journal_records(path):
    """(offset, type, payload length) of each record of a segment file."""
    with open(path, "rb") as f:
        data = f.read()
    out, off = [], HEADER_LEN
    while off + RECORD_HEADER <= len(data):
        (plen,) = struct.unpack_from("<I", data, off + 4)
        out.append((off, data[off + 2], plen))
        off += RECORD_HEADER + plen
    return out


def crc32c(data, crc=0):
    """CRC-32C (JOURNAL.md §1.1), bit by bit: for a header or two."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def dir_bytes(path):
    """Bytes of journal files in path now (a file may go while we look)."""
    total = 0
    for n in os.listdir(path):
        if n.startswith(("journal.", "snapshot.")):
            try:
                total += os.path.getsize(os.path.join(path, n))
            except FileNotFoundError:
                pass
    return total


class Submitter:
    """A client that submits jobs in batches over the wire and remembers
    every ACCEPTED item and every RESULTS item, across broker restarts
    (same cid, refs resent, awaited ids awaited again), as PROTOCOL.md §4.2
    asks of a client."""

    def __init__(self, endpoint, n, task="noop", args=None, batch=100, window=2000):
        self.endpoint, self.n, self.task, self.args = endpoint, n, task, args
        self.batch, self.window = batch, window
        self.cid = wire.new_cid()
        self.next_ref = 1          # refs below it have been sent
        self.acked = {}            # ref -> id
        self.refused = {}          # ref -> (code, text)
        self.results = {}          # id -> [(st, attempts, times)] per RESULTS item received
        self.sock = None
        self.connect()

    def connect(self):
        if self.sock is not None:
            self.sock.close(0)
        self.sock = wire.connect(self.endpoint)
        wire.hello(self.sock, CLIENT, cid=self.cid, name="submitter", timeout=10)

    def unacked(self):
        return [r for r in range(1, self.next_ref) if r not in self.acked and
                r not in self.refused]

    def send(self, refs):
        for i in range(0, len(refs), self.batch):
            self.sock.send(wire.submit([wire.job(r, self.task, args=self.args)
                                        for r in refs[i:i + self.batch]]))

    def pump(self, timeout=0.05):
        """Read what is waiting (for at most timeout seconds first)."""
        if not self.sock.poll(int(timeout * 1000)):
            return
        while self.sock.poll(0):
            cmd, body = wire.decode(self.sock.recv())
            if cmd == wire.ACCEPTED:
                for a in body["acks"]:
                    if a[1]:
                        old = self.acked.setdefault(a[0], a[1])
                        assert old == a[1], "ref %d accepted as %d, then %d" % (a[0], old, a[1])
                    else:
                        self.refused[a[0]] = (a[2], a[3])
            elif cmd == wire.RESULTS:
                for r in body["results"]:
                    self.results.setdefault(r["id"], []).append(
                        (r["st"], r.get("att"), tuple(r.get("t", ()))))

    def submit_more(self):
        """Send the next batch if the window (jobs without a result) allows."""
        if self.next_ref <= self.n and self.next_ref - 1 - len(self.results) < self.window:
            refs = list(range(self.next_ref, min(self.next_ref + self.batch, self.n + 1)))
            self.next_ref += len(refs)
            self.send(refs)

    def after_restart(self):
        """Reconnect, resend what was not accepted, await what has no result."""
        self.pump(0.2)   # what the old connection received before the crash
        self.connect()
        self.pump(0.2)   # results the broker held for this cid
        self.send(self.unacked())
        missing = [i for i in self.acked.values() if i not in self.results]
        for i in range(0, len(missing), 4096):
            self.sock.send(wire.await_(missing[i:i + 4096]))

    def done(self):
        return (self.next_ref > self.n and not self.unacked() and
                all(i in self.results for i in self.acked.values()))

    def close(self):
        self.sock.close(0)


class DurabilityTest(harness.ClusterTest):
    def setUp(self):
        super().setUp()
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            p.close()
        super().tearDown()

    def peer(self, role, name, **kw):
        p = Peer(self.c.endpoint, role, name, **kw)
        self.peers.append(p)
        return p

    def kill9(self):
        b = self.c.broker
        b.signal(signal.SIGKILL)
        b.p.wait(10)

    def stop(self):
        b = self.c.broker
        b.signal(signal.SIGTERM)
        self.assertEqual(b.p.wait(15), 0, b.output()[-3000:])

    def status(self, client, ids):
        rep = wire.request(client.sock, wire.STATUS, ids=list(ids), backlog=client.inbox)
        return {j["id"]: j for j in rep["jobs"]}

    def depth(self, queue="default"):
        s = self.c.stats()
        return next((q["depth"] for q in s["queues"] if q["name"] == queue), 0)


class Crash(DurabilityTest):
    def test_sigkill_during_10000_submits_fsync_always(self):
        """Every job the client saw acknowledged completes, once: no result
        the client saw is followed by another completion of the same job;
        resends after the restart find their jobs."""
        n = 10000
        self.c.start_broker("--fsync", "always")
        self.c.start_worker("--coros", "16", "--log-level", "info", procs=2, expect_slots=32)
        s = Submitter(self.c.endpoint, n, task="sleep", args=wire.pack({"ms": 1}))
        try:
            deadline = time.monotonic() + 60
            while len(s.acked) < 3000 and time.monotonic() < deadline:
                s.submit_more()
                s.pump()
            self.assertGreaterEqual(len(s.acked), 3000, "submits are not acknowledged")
            s.submit_more()
            s.submit_more()       # some in flight as the broker dies
            self.kill9()
            s.pump(0.2)
            before = dict(s.acked)
            seen = {i: r[0] for i, r in s.results.items()}   # results seen before the crash
            self.c.start_broker("--fsync", "always")
            s.after_restart()
            deadline = time.monotonic() + 90
            while not s.done() and time.monotonic() < deadline:
                s.submit_more()
                s.pump()
            self.assertTrue(s.done(), "%d of %d accepted, %d results" % (
                len(s.acked), n, len(s.results)))
        finally:
            s.close()
        self.assertEqual(s.refused, {})
        self.assertEqual(len(s.acked), n)
        for ref, jid in before.items():         # accepted before the crash: the same job
            self.assertEqual(s.acked[ref], jid)
        self.assertEqual(len(set(s.acked.values())), n, "a resend made a second job")
        # A client that awaits, after a reconnect, what it has not yet read
        # may get copies of a result (PROTOCOL.md §4.5: once per await or
        # submit; the C library hands each job's first to its handle); but
        # every copy is of the same completion: no job ran to a second one.
        two = {i: rs for i, rs in s.results.items() if len(set(rs)) != 1}
        self.assertEqual(two, {}, "jobs completed twice")
        for i, r in seen.items():
            self.assertEqual(s.results[i][-1], r, "job %d ran again after the restart" % i)
        self.assertEqual({rs[0][0] for rs in s.results.values()}, {wire.ST_OK})
        self.assertTrue(0 < len(seen) < n)
        stats = self.c.stats()
        self.assertEqual(stats["kept"], n)      # no job beyond the 10,000
        self.assertEqual(sum(q["depth"] + q["running"] for q in stats["queues"]), 0)
        self.assertIn("replayed", self.c.broker.output())
        self.stop()

    def test_sigkill_under_qclient_map(self):
        """The same through libqjob (qclient map, --fsync always): each of the
        10,000 handles ends once, ok, and the broker holds 10,000 jobs."""
        n = 10000
        self.c.start_broker("--fsync", "always", "--log-level", "info")
        self.c.start_worker("--coros", "8", "--log-level", "info", procs=2, expect_slots=16)
        with open(self.c.path("in.jsonl"), "w") as f:
            f.write('{"ms": 1}\n' * n)
        out = self.c.path("out.jsonl")
        errpath = self.c.path("qclient.log")
        with open(self.c.path("in.jsonl")) as fin, open(out, "w") as fout, \
                open(errpath, "w") as ferr:
            client = subprocess.Popen([harness.QCLIENT, "--broker", self.c.endpoint, "--json",
                                       "--timeout", "90", "map", "sleep", "--inflight", "500"],
                                      stdin=fin, stdout=fout, stderr=ferr, env=self.c.env)
        try:
            harness.wait_for(lambda: os.path.getsize(out) > 300 * 2000, timeout=30,
                             what="2000 results")
            self.kill9()
            self.c.start_broker("--fsync", "always", "--log-level", "info")
            rc = client.wait(120)
            with open(errpath) as f:
                self.assertEqual(rc, 0, "qclient map exited %d:\n%s" % (rc, f.read()[-3000:]))
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        with open(out) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(sorted(r["line"] for r in lines), list(range(1, n + 1)))
        self.assertEqual({r["status"] for r in lines}, {"ok"})
        self.assertEqual(len({r["id"] for r in lines}), n)
        self.assertEqual(self.c.stats()["kept"], n)
        self.stop()

    def test_restart_requeues_dispatched_not_completed(self):
        self.c.start_broker()
        c = self.peer(CLIENT, "c")
        w = self.peer(WORKER, "w", credit=3)
        due = time.time() + 3
        c.send(wire.submit([wire.job(i, "t", pri=i % 2) for i in range(1, 6)] +
                           [wire.job(6, "t", key="once"),
                            wire.job(7, "t", at=int(due * 1e6)),
                            wire.job(8, "t", q="other"), wire.job(9, "t", q="other")]))
        ids = {a[0]: a[1] for a in c.items(wire.ACCEPTED, "acks", 9)}
        leased = [j["id"] for j in w.items(wire.JOBS, "jobs", 3)]
        self.assertEqual(leased, [ids[1], ids[3], ids[5]])   # priority 1 first
        c.send(wire.cancel([ids[8]], rid=1))
        c.take(wire.CANCEL_REP)
        w.send(wire.results([wire.result(ids[1], wire.ST_OK, val=wire.pack("one"))], credit=0))
        got = c.items(wire.RESULTS, "results", 2)      # the cancelled one's, and ids[1]'s
        self.assertEqual(sorted(r["id"] for r in got), sorted([ids[1], ids[8]]))
        # A result leaves once its FINISH is written (JOURNAL.md §4): the
        # broker's crash right after it does not run ids[1] again.
        self.kill9()                       # ids[3] and ids[5] were leased, never answered
        w.close()
        c.close()
        self.peers = []

        self.c.start_broker()
        log = self.c.broker.output()
        self.assertIn("2 of them requeued", log)
        c = self.peer(CLIENT, "c", cid=c.cid)
        st = self.status(c, ids.values())
        self.assertEqual(st[ids[1]]["state"], wire.STATE_DONE)
        self.assertEqual(wire.unpack(st[ids[1]]["val"]), "one")
        self.assertEqual((st[ids[3]]["state"], st[ids[3]]["att"]), (wire.STATE_QUEUED, 1))
        self.assertEqual(st[ids[7]]["state"], wire.STATE_DELAYED)
        self.assertEqual((st[ids[8]]["state"], st[ids[8]]["st"]),
                         (wire.STATE_DONE, wire.ST_CANCELLED))
        self.assertEqual(st[ids[9]]["state"], wire.STATE_QUEUED)
        # A resend (same cid and ref) and a key find the same jobs; ids go on above.
        c.send(wire.submit([wire.job(2, "t"), wire.job(10, "t", key="once"),
                            wire.job(11, "t")]))
        acks = {a[0]: a[1] for a in c.items(wire.ACCEPTED, "acks", 3)}
        self.assertEqual((acks[2], acks[10]), (ids[2], ids[6]))
        self.assertGreater(acks[11], max(ids.values()))
        # The requeued jobs go first, in the order they were leased, their
        # first attempt counted; then the queue in its order.
        w = self.peer(WORKER, "w2", credit=10)
        jobs = w.items(wire.JOBS, "jobs", 6)
        self.assertEqual([j["id"] for j in jobs],
                         [ids[3], ids[5], ids[2], ids[4], ids[6], acks[11]])
        self.assertEqual([j["attempt"] for j in jobs[:3]], [2, 2, 1])
        w.send(wire.results([wire.result(j["id"], wire.ST_OK, t=[0, 0, 0, 1000, 3000])
                             for j in jobs], credit=6))
        got = c.items(wire.RESULTS, "results", 6)
        self.assertEqual({r["id"] for r in got}, {j["id"] for j in jobs})
        # The figures by SUBMIT size count only acks[11], of a SUBMIT of 3:
        # the size of a replayed job's SUBMIT is not journaled.
        q = next(q for q in self.c.stats()["queues"] if q["name"] == "default")
        self.assertEqual((q["compute_us"], q["b_jobs"][:3], sum(q["b_jobs"])),
                         (6 * 2000, [0, 1, 0], 1))
        self.assertEqual(q["b_compute_us"][1], 2000)
        # The delayed job comes when its time comes, not before.
        [j] = w.items(wire.JOBS, "jobs", 1, timeout=6)
        self.assertEqual(j["id"], ids[7])
        self.assertGreaterEqual(time.time(), due - 0.05)
        self.stop()


    def test_resend_after_restart_gets_accepted_then_result(self):
        """A submit whose ACCEPTED was lost with the broker, and whose job
        finished meanwhile: the resend gets the ACCEPTED and then the result,
        which a client can match only once it knows the id."""
        self.c.start_broker()
        c = self.peer(CLIENT, "c")
        w = self.peer(WORKER, "w", credit=1)
        c.send(wire.submit([wire.job(1, "t")]))      # its ACCEPTED is never read
        [j] = w.items(wire.JOBS, "jobs", 1)
        w.send(wire.results([wire.result(j["id"], wire.ST_OK, val=wire.pack(42))], credit=1))
        harness.wait_for(lambda: self.c.stats()["done"] == 1, what="the result")
        self.kill9()
        self.c.start_broker()
        c2 = self.peer(CLIENT, "c", cid=c.cid)
        c2.send(wire.submit([wire.job(1, "t")]))     # the resend
        got = []
        while not got or got[-1][0] != wire.RESULTS:
            msg = wire.recv(c2.sock, 5)
            self.assertIsNotNone(msg, "no RESULTS after the resend (got %r)" % got)
            if msg[0] != wire.HEARTBEAT:
                got.append(msg)
        self.assertEqual([cmd for cmd, _ in got], [wire.ACCEPTED, wire.RESULTS])
        self.assertEqual(got[0][1]["acks"], [[1, j["id"]]])
        [r] = got[1][1]["results"]
        self.assertEqual((r["id"], r["ref"], r["st"], wire.unpack(r["val"])),
                         (j["id"], 1, wire.ST_OK, 42))
        self.stop()


def submit_one_by_one(client, batches):
    """Each batch of jobs in a SUBMIT of its own, sent once the one before
    it is acknowledged: each batch's JOB record (§3: the jobs of a turn
    share one) is its own.  Returns the ids, in order."""
    ids = []
    for batch in batches:
        client.send(wire.submit(batch))
        ids += [a[1] for a in client.items(wire.ACCEPTED, "acks", len(batch))]
    return ids


class Damage(DurabilityTest):
    def test_corrupt_byte_in_the_middle(self):
        self.c.start_broker()
        c = self.peer(CLIENT, "c")
        ids = submit_one_by_one(c, [[wire.job(k * 5 + i, "t") for i in range(1, 6)]
                                    for k in range(4)])
        c.close()
        self.peers = []
        self.stop()
        seg = self.c.path("data/journal.000001")
        recs = journal_records(seg)
        self.assertEqual([t for _, t, _ in recs], [JOB] * 4)
        off, _, plen = recs[1]
        with open(seg, "r+b") as f:       # one byte of the 10th job's task name
            f.seek(off + RECORD_HEADER + plen - 6)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x20]))
        self.c.start_broker()
        log = self.c.broker.output()
        self.assertIn("journal.000001 offset %d: damaged job record (checksum mismatch)" % off,
                      log)
        c = self.peer(CLIENT, "c2")
        st = self.status(c, ids)
        lost = [i for i in ids if st[i]["state"] == wire.STATE_UNKNOWN]
        self.assertEqual(lost, ids[5:10])  # the jobs of that record; the others are kept
        self.assertEqual(self.depth(), 15)
        self.stop()

    def test_older_journal_refused(self):
        """A data directory of an older qbroker: the broker stops, says what
        to do, and leaves the files as they are."""
        data = self.c.path("data")
        os.makedirs(data)
        head = b"QJJL" + struct.pack("<HBBQI", VERSION - 1, 1, 0, 1, 0)
        head += struct.pack("<I", crc32c(head))
        seg = os.path.join(data, "journal.000001")
        with open(seg, "wb") as f:
            f.write(head + b"\xf5\x4a" + b"\x00" * 30)
        r = self.c.start("qbroker", [harness.QBROKER, "--bind", "ipc://" + self.c.path("b"),
                                     "--data-dir", data])
        self.assertEqual(r.p.wait(10), 1)
        self.assertIn("journal.000001 was written by an older qbroker (journal version %d"
                      % (VERSION - 1), r.output())
        self.assertIn("move the directory aside", r.output())
        self.assertEqual(sorted(os.listdir(data)), ["LOCK", "journal.000001"])
        self.assertEqual(os.path.getsize(seg), len(head) + 32)

    def test_torn_tail_is_cut(self):
        self.c.start_broker()
        c = self.peer(CLIENT, "c")
        ids = submit_one_by_one(c, [[wire.job(i, "t")] for i in range(1, 6)])
        c.close()
        self.peers = []
        self.stop()
        seg = self.c.path("data/journal.000001")
        size = os.path.getsize(seg)
        os.truncate(seg, size - 10)       # the last write was cut short
        self.c.start_broker()
        self.assertIn("torn tail", self.c.broker.output())
        self.assertEqual(os.path.getsize(seg), journal_records(seg)[-1][0] + RECORD_HEADER +
                         journal_records(seg)[-1][2])
        c = self.peer(CLIENT, "c2")
        st = self.status(c, ids)
        self.assertEqual([st[i]["state"] for i in ids], [wire.STATE_QUEUED] * 4 +
                         [wire.STATE_UNKNOWN])
        self.stop()

    def test_second_broker_on_the_same_dir_refused(self):
        self.c.start_broker()
        r = self.c.start("qbroker2", [harness.QBROKER, "--bind", "ipc://" + self.c.path("b2"),
                                      "--data-dir", self.c.path("data")])
        self.assertEqual(r.p.wait(10), 1)
        self.assertIn("in use by another qbroker", r.output())
        self.stop()


class Compaction(DurabilityTest):
    def test_journal_stays_small_and_keeps_the_live_state(self):
        self.c.start_broker("--journal-compact", "1", "--max-results", "500", "--fsync", "off",
                            "--log-level", "info")
        data = self.c.path("data")
        c = self.peer(CLIENT, "c")
        # Live state that must survive every compaction: jobs queued on a
        # queue no worker serves, in a priority and FIFO order.
        idle = [wire.job(i, "t", q="idle", pri=(i % 3) - 1, args=wire.pack(i))
                for i in range(1, 51)]
        c.send(wire.submit(idle))
        idle_ids = {a[0]: a[1] for a in c.items(wire.ACCEPTED, "acks", 50)}
        want_order = [idle_ids[j["ref"]] for j in sorted(idle, key=lambda j: -j["pri"])]
        self.c.start_worker("--coros", "8", "--log-level", "info", procs=2, expect_slots=16)
        n = 50000
        s = Submitter(self.c.endpoint, n, args=wire.pack("x" * 200), batch=200, window=1000)
        biggest, deadline = 0, time.monotonic() + 90
        try:
            while not s.done() and time.monotonic() < deadline:
                s.submit_more()
                s.pump()
                biggest = max(biggest, dir_bytes(data))
            self.assertTrue(s.done(), "%d results of %d" % (len(s.results), n))
        finally:
            s.close()
        log = self.c.broker.output()
        # ~300 bytes of records per job: 15 MB written in all; the journal
        # holds at most two snapshots (~1 MB each: the jobs in the window
        # and the results kept), a log of ~1 MB, and what the broker wrote
        # in the 20 ms between two looks at its size.
        self.assertGreaterEqual(log.count("journal: compacted"), 5, log[-3000:])
        self.assertLess(biggest, 6 << 20, "the journal grew to %d bytes" % biggest)
        self.assertLess(dir_bytes(data), 4 << 20)
        self.assertTrue(any(n.startswith("snapshot.") for n in os.listdir(data)))
        self.assertFalse(os.path.exists(os.path.join(data, "journal.000001")))
        last = sorted(s.acked.values())[-500:]
        self.stop()

        self.c.start_broker("--max-results", "500")
        c = self.peer(CLIENT, "c2")
        st = self.status(c, last[-10:] + list(idle_ids.values()))
        self.assertEqual({st[i]["state"] for i in last[-10:]}, {wire.STATE_DONE})
        self.assertEqual({st[i]["state"] for i in idle_ids.values()}, {wire.STATE_QUEUED})
        self.assertEqual(self.c.stats()["kept"], 500)
        w = self.peer(WORKER, "w", credit=50, queues=["idle"])
        jobs = w.items(wire.JOBS, "jobs", 50)
        self.assertEqual([j["id"] for j in jobs], want_order)
        self.assertEqual([wire.unpack(j["args"]) for j in jobs],
                         [j["ref"] for j in sorted(idle, key=lambda j: -j["pri"])])
        self.stop()


class Limits(DurabilityTest):
    def test_max_memory_refuses_and_drops_nothing(self):
        # Finished jobs count until they expire: keep few (--max-results).
        self.c.start_broker("--max-memory", "1", "--max-results", "2")
        c = self.peer(CLIENT, "c")
        big = wire.pack(b"x" * (64 * 1024))
        accepted, refusal = [], None
        for ref in range(1, 100):
            c.send(wire.submit([wire.job(ref, "t", args=big)]))
            [a] = c.items(wire.ACCEPTED, "acks", 1)
            if a[1] == 0:
                refusal = a
                break
            accepted.append(a[1])
        self.assertIsNotNone(refusal, "never refused")
        self.assertEqual(refusal[2], wire.E_QUEUE_FULL)
        self.assertIn("--max-memory 1 MB", refusal[3])
        self.assertIn("queue full", refusal[3])
        self.assertTrue(10 <= len(accepted) <= 17, len(accepted))
        self.assertEqual(self.depth(), len(accepted))        # none dropped
        w = self.peer(WORKER, "w", credit=100)
        jobs = w.items(wire.JOBS, "jobs", len(accepted))
        self.assertEqual([j["id"] for j in jobs], accepted)
        w.send(wire.results([wire.result(j["id"], wire.ST_OK) for j in jobs]))
        c.items(wire.RESULTS, "results", len(accepted))
        c.send(wire.submit([wire.job(500, "t", args=big)]))   # room again
        [a] = c.items(wire.ACCEPTED, "acks", 1)
        self.assertNotEqual(a[1], 0, a)
        self.stop()

    def test_sigterm_makes_the_journal_durable(self):
        self.c.start_broker("--fsync", "batch")
        c = self.peer(CLIENT, "c")
        for k in range(20):
            c.send(wire.submit([wire.job(k * 100 + i, "t") for i in range(1, 101)]))
        # The signal must not overtake every submit (the broker would stop
        # reading before any): it goes once the first one is answered.
        harness.wait_for(lambda: c.pump() or c.inbox, what="the first ACCEPTED")
        self.c.broker.signal(signal.SIGTERM)
        acked, deadline = [], time.monotonic() + 10
        while time.monotonic() < deadline:
            got = c.inbox.pop(0) if c.inbox else wire.recv(c.sock, 1)
            if got is None:
                continue
            cmd, body = got
            if cmd == wire.ACCEPTED:
                acked += [a[1] for a in body["acks"] if a[1]]
            elif cmd == wire.BYE:
                break
        self.assertEqual(self.c.broker.p.wait(10), 0)
        self.assertIn("kept in the journal", self.c.broker.output())
        self.assertGreater(len(acked), 0)
        self.c.start_broker()
        c2 = self.peer(CLIENT, "c2")
        st = self.status(c2, acked)
        self.assertEqual({st[i]["state"] for i in acked}, {wire.STATE_QUEUED})
        self.assertEqual(self.depth(), len(acked))   # every job it took was acknowledged
        self.stop()


if __name__ == "__main__":
    harness.main()
