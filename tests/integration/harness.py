"""Starts real qbroker / qworker processes for integration tests.

Every test gets a private temp dir; the broker listens on ipc:// inside it
(or on tcp://127.0.0.1:* with the port read back from --endpoint-file), so
tests run in parallel without port clashes. Processes are stopped by pid,
only those this harness started. Logs of every process are kept in the
temp dir and printed when a test fails.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import wire

BUILD = os.environ.get("QJOB_BUILD_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
SOURCE = os.environ.get("QJOB_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")

QBROKER = os.path.join(BUILD, "server", "qbroker")
QWORKER = os.path.join(BUILD, "server", "qworker")
QCLIENT = os.path.join(BUILD, "client", "qclient")
EXAMPLE_PLUGIN = os.path.join(BUILD, "client", "examples", "example_tasks.so")
EXAMPLE_GATHER = os.path.join(BUILD, "client", "examples", "example_gather")

# qclient exit codes (qclient --help documents them).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_UNREACHABLE = 4
EXIT_REFUSED = 5
EXIT_CANCELLED = 6
EXIT_JOB_TIMEOUT = 7
EXIT_UNKNOWN = 8


def read_text(path):
    with open(path) as f:
        return f.read()


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    """Poll pred() until it is truthy; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


class Proc:
    """A started program: its Popen, its log file, and how to stop it."""

    def __init__(self, name, argv, logpath, env=None, stdin=None):
        self.name = name
        self.argv = argv
        self.logpath = logpath
        self.log = open(logpath, "wb")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                  env=env, start_new_session=True)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def stop(self, sig=None, timeout=10.0):
        """Signal the process (default SIGTERM), wait; SIGKILL it (by pid) if
        it will not go.  (The default is not written signal.SIGTERM: in the
        class body, `signal` is the method above.)"""
        sig = signal.SIGTERM if sig is None else sig
        if self.alive():
            os.kill(self.p.pid, sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self.log.close()
        return self.p.returncode

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Cluster:
    """A broker and workers in a temp dir.  Use as a context manager."""

    def __init__(self, tcp=False):
        self.dir = tempfile.mkdtemp(prefix="qjob-test-")
        self.tcp = tcp
        self.procs = []
        self.broker = None
        self.endpoint = None
        self.env = dict(os.environ)
        self.env.pop("QJOB_BROKER", None)
        self.env.pop("QJOB_CONFIG", None)
        self.env.pop("QJOB_CURVE_SECRET", None)
        self.env.pop("QJOB_BROKER_KEY", None)
        self.curve = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def dump_logs(self, out=sys.stderr):
        for p in self.procs:
            out.write("---- %s (%s) ----\n%s\n" % (p.name, " ".join(p.argv), p.output()[-8000:]))

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, name, argv, stdin=None):
        p = Proc(name, argv, self.path("%s.%d.log" % (name, len(self.procs))), env=self.env,
                 stdin=stdin)
        self.procs.append(p)
        return p

    def enable_curve(self):
        """Make CURVE keys (qclient keygen) for the broker, a client and a
        worker in keys/: start_broker and start_worker then use them, and
        qclient gets the client's through $QJOB_CURVE_SECRET/$QJOB_BROKER_KEY.
        Returns the dict of base names (keys/NAME.key, keys/NAME.pub)."""
        os.makedirs(self.path("keys"), mode=0o700)
        self.curve = {n: self.path(os.path.join("keys", n)) for n in ("broker", "client", "worker")}
        for base in self.curve.values():
            subprocess.run([QCLIENT, "keygen", base], check=True, capture_output=True)
        self.env["QJOB_CURVE_SECRET"] = self.curve["client"] + ".key"
        self.env["QJOB_BROKER_KEY"] = self.curve["broker"] + ".pub"
        return self.curve

    def start_broker(self, *args, wait=True):
        """Start qbroker; returns its Proc once it answers STATS."""
        epfile = self.path("endpoint")
        if os.path.exists(epfile):
            os.unlink(epfile)
        bind = "tcp://127.0.0.1:*" if self.tcp else "ipc://" + self.path("broker.sock")
        argv = [QBROKER, "--bind", bind, "--endpoint-file", epfile, "--log-level", "debug"]
        if "--data-dir" not in args:   # the journal: private, and kept across restarts
            argv += ["--data-dir", self.path("data")]
        if self.curve and "--curve-secret" not in args:
            argv += ["--curve-secret", self.curve["broker"] + ".key",
                     "--clients-allow", self.curve["client"] + ".pub",
                     "--workers-allow", self.curve["worker"] + ".pub"]
        argv += list(args)
        self.broker = self.start("qbroker", argv)
        if wait:
            wait_for(lambda: os.path.exists(epfile) and read_text(epfile).strip(),
                     what="qbroker to write its endpoint file")
            self.endpoint = read_text(epfile).split()[0]
            self.env["QJOB_BROKER"] = self.endpoint
            wait_for(lambda: self.stats() is not None, what="qbroker to answer stats")
        return self.broker

    def start_worker(self, *args, procs=1, expect_slots=None, wait=True):
        """Start qworker; wait until the broker counts its slots."""
        before = self.total_slots()
        argv = [QWORKER, "--broker", self.endpoint, "--procs", str(procs), "--log-level", "debug"]
        if self.curve and "--curve-secret" not in args:
            argv += ["--curve-secret", self.curve["worker"] + ".key",
                     "--broker-key", self.curve["broker"] + ".pub"]
        argv += list(args)
        w = self.start("qworker", argv)
        if wait:
            want = before + (expect_slots if expect_slots is not None else procs)
            wait_for(lambda: self.total_slots() >= want, timeout=15,
                     what="qworker's %d slots to register" % want)
        return w

    def qclient(self, *args, input=None, timeout=60, check=None):
        """Run qclient against this cluster; returns CompletedProcess (text)."""
        argv = [QCLIENT] + list(args)
        r = subprocess.run(argv, input=input, capture_output=True, text=True,
                           timeout=timeout, env=self.env)
        if check is not None and r.returncode != check:
            raise AssertionError("%s exited %d (wanted %d)\nstdout: %s\nstderr: %s" % (
                " ".join(argv), r.returncode, check, r.stdout[-4000:], r.stderr[-4000:]))
        return r

    def stats(self):
        """The broker's STATS_REP figures (keys of PROTOCOL.md §5.3), asked
        over a raw DEALER (wire.py), so that it does not need qclient; None
        if the broker does not answer."""
        if not self.endpoint:
            return None
        curve = (self.curve["client"] + ".key", self.curve["broker"] + ".pub") if self.curve \
            else None
        return wire.stats_once(self.endpoint, timeout=2.0, curve=curve)

    def total_slots(self):
        s = self.stats()
        if not s:
            return 0
        return sum(w.get("slots", 0) for w in s.get("wlist", []))


class ClusterTest(unittest.TestCase):
    """Base class: self.c is a fresh Cluster; its logs print on failure."""

    tcp = False

    def setUp(self):
        self.c = Cluster(tcp=self.tcp)

    def tearDown(self):
        failed = any(err for _, err in self._outcome.errors if err) if hasattr(
            self._outcome, "errors") else False
        result = getattr(self._outcome, "result", None)
        if result is not None and (result.failures or result.errors):
            failed = True
        if failed:
            self.c.dump_logs()
        self.c.close()


def main():
    unittest.main(verbosity=2)
