"""qbroker when its journal cannot be written (server/JOURNAL.md §4): the
disk is made "full" by lowering the running broker's file size limit
(RLIMIT_FSIZE, through prlimit), so that write(2) fails with EFBIG as it
would with ENOSPC. The broker must refuse new submits with a message that
says why, hold the ACCEPTED of a job it could not record, keep serving,
and once the journal can be written again accept, run and keep every job
it took, across a restart."""
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import wire  # noqa: E402
from test_durability import DurabilityTest  # noqa: E402
from wire import CLIENT, WORKER  # noqa: E402

ARGS = wire.pack(b"x" * 1024)


def segment_bytes(datadir):
    return sum(os.path.getsize(os.path.join(datadir, n)) for n in os.listdir(datadir)
               if n.startswith("journal."))


class JournalFull(DurabilityTest):
    def ack(self, c, ref, timeout):
        """The ACCEPTED item for ref, or None if none came within timeout."""
        try:
            items = c.items(wire.ACCEPTED, "acks", 1, timeout=timeout, alive=[c])
        except AssertionError:
            return None
        self.assertEqual(items[0][0], ref, items)
        return items[0]

    def test_write_failure_refuses_then_recovers_and_loses_nothing(self):
        self.c.start_broker("--fsync", "batch")
        pid, datadir = self.c.broker.pid, self.c.path("data")
        room = segment_bytes(datadir) + 32 * 1024
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (room, resource.RLIM_INFINITY))
        c = self.peer(CLIENT, "c")

        accepted, held, refusal = [], None, None
        for ref in range(1, 200):
            c.send(wire.submit([wire.job(ref, "t", args=ARGS)]))
            a = self.ack(c, ref, timeout=1.0 if held is None else 5.0)
            if a is None:
                self.assertIsNone(held, "two submits without an answer")
                held = ref      # its JOB record is not written: its ACCEPTED waits
                continue
            if a[1] == 0:
                refusal = a
                break
            accepted.append(a[1])
        self.assertIsNotNone(held, "the journal never failed (%d accepted)" % len(accepted))
        self.assertIsNotNone(refusal, "never refused")
        self.assertEqual(refusal[2], wire.E_INTERNAL)
        self.assertIn("cannot write its journal", refusal[3])
        self.assertIn("File too large", refusal[3])
        self.assertTrue(self.c.broker.alive())
        self.assertIn("submits are refused until it can", self.c.broker.output())
        self.assertGreater(len(accepted), 10)

        # Room again: the held job is acknowledged on the next retry,
        # and new submits are taken.
        resource.prlimit(pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        a = self.ack(c, held, timeout=5.0)
        self.assertIsNotNone(a, "the held submit was never acknowledged")
        self.assertNotEqual(a[1], 0, a)
        accepted.append(a[1])
        c.send(wire.submit([wire.job(1000, "t", args=ARGS)]))
        a = self.ack(c, 1000, timeout=5.0)
        self.assertNotEqual(a[1], 0, a)
        accepted.append(a[1])
        self.assertIn("writing again", self.c.broker.output())

        # Every job it took runs, once, and its result reaches the client.
        w = self.peer(WORKER, "w", credit=len(accepted))
        jobs = w.items(wire.JOBS, "jobs", len(accepted), alive=[c, w])
        self.assertEqual(sorted(j["id"] for j in jobs), sorted(accepted))
        w.send(wire.results([wire.result(j["id"], wire.ST_OK) for j in jobs]))
        results = c.items(wire.RESULTS, "results", len(accepted), alive=[c, w])
        self.assertEqual(sorted(r["id"] for r in results), sorted(accepted))

        # And the journal holds them all: after a restart each is done.
        w.close()
        c.close()
        self.peers = []
        self.stop()
        self.c.start_broker()
        st = self.status(self.peer(CLIENT, "c2"), accepted)
        states = {i: j["state"] for i, j in st.items()}
        self.assertEqual(set(states.values()), {wire.STATE_DONE}, states)
        self.assertEqual(sorted(states), sorted(accepted))


if __name__ == "__main__":
    harness.main()
