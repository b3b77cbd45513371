"""Security: CURVE key files, the broker's ZAP handler and roles, the safe
defaults (loopback-only binds, key file permissions), what travels on the
wire with and without CURVE, and the exec task being off unless asked for.

Every broker here listens on tcp://127.0.0.1 (an ephemeral port); the wire
capture is a TCP proxy in this process between a client and the broker."""
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import wire  # noqa: E402
import zmq  # noqa: E402
from harness import (EXIT_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE,  # noqa: E402
                     EXIT_USAGE, QBROKER, QCLIENT, QWORKER, wait_for)

SECRET_ARGS = "s3cr3t-args-7d1e9f"   # must never cross the wire in clear under CURVE
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:")


def keygen(base):
    r = subprocess.run([QCLIENT, "keygen", base], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def run(argv, env=None, timeout=30):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    assert not SANITIZER_REPORT.search(r.stderr), r.stderr
    return r


class Proxy:
    """A TCP proxy on 127.0.0.1 that records every byte it carries, both
    ways, for one upstream host:port."""

    def __init__(self, upstream):
        host, port = upstream.rsplit("//", 1)[1].rsplit(":", 1)
        self.upstream = (host, int(port))
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.endpoint = "tcp://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.captured = bytearray()
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping:
            try:
                down, _ = self.listener.accept()
            except socket.timeout:
                continue
            up = socket.create_connection(self.upstream)
            for a, b in ((down, up), (up, down)):
                t = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src, dst):
        src.settimeout(0.2)
        while not self.stopping:
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            with self.lock:
                self.captured += data
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.stopping = True
        for t in self.threads:
            t.join(2)
        self.listener.close()
        return bytes(self.captured)


class SecurityTest(harness.ClusterTest):
    tcp = True

    def tearDown(self):
        # In an ASan+UBSan build, a report from any program started fails
        # the test (leaks are reported as they exit).
        reports = []
        try:
            for p in reversed(self.c.procs):
                p.stop()
                reports += [line for line in p.output().splitlines()
                            if SANITIZER_REPORT.search(line)]
        finally:
            super().tearDown()
        self.assertEqual(reports, [], "sanitizer reports")

    def curve_cluster(self, *broker_args, worker=True, worker_args=()):
        keys = self.c.enable_curve()
        self.c.start_broker(*broker_args)
        if worker:
            self.c.start_worker(*worker_args)
        return keys

    def submit(self, task, args, *extra, env=None):
        argv = [QCLIENT, "--broker", self.c.endpoint, "--timeout", "30", "--connect-timeout",
                "3"] + list(extra) + ["submit", task, json.dumps(args)]
        return run(argv, env=env or self.c.env, timeout=60)

    def raw(self, key, role=wire.CLIENT, routing_id=None):
        """A DEALER over CURVE with keys/KEY.key (None: no CURVE)."""
        curve = (key + ".key", self.c.curve["broker"] + ".pub") if key else None
        s = wire.connect(self.c.endpoint, curve=curve)
        if routing_id:
            s.close(0)
            s = zmq.Context.instance().socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.ROUTING_ID, routing_id)
            mine, broker = wire.key_file(key + ".key"), wire.key_file(curve[1])
            s.curve_secretkey, s.curve_publickey = mine["secret"], mine["public"]
            s.curve_serverkey = broker["public"]
            s.connect(self.c.endpoint)
        return s

    # ------------------------------------------------------------ keygen

    def test_keygen_files_and_modes(self):
        base = self.c.path("alice")
        public = keygen(base)
        self.assertEqual(len(public), 40)
        self.assertEqual(stat.S_IMODE(os.stat(base + ".key").st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(base + ".pub").st_mode), 0o644)
        sec, pub = wire.key_file(base + ".key"), wire.key_file(base + ".pub")
        self.assertEqual(sec["public"], public.encode())
        self.assertEqual(pub["public"], public.encode())
        self.assertIsNone(pub["secret"])
        self.assertEqual(zmq.curve_public(sec["secret"]), public.encode())
        self.assertIn('name = "alice"', open(base + ".pub").read())
        # never replaces a key
        r = run([QCLIENT, "keygen", base])
        self.assertEqual(r.returncode, EXIT_FAILED, r.stderr)
        self.assertIn("exists", r.stderr)
        self.assertEqual(wire.key_file(base + ".key"), sec)
        r = run([QCLIENT, "--json", "keygen", self.c.path("bob")])
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["key"].encode(), wire.key_file(self.c.path("bob.pub"))["public"])
        self.assertEqual(run([QCLIENT, "keygen"]).returncode, EXIT_USAGE)

    # ------------------------------------------------------------ CURVE

    def test_authorised_client_and_worker(self):
        self.curve_cluster()
        r = self.submit("echo", {"x": SECRET_ARGS})
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"x": SECRET_ARGS})
        # a worker submits sub-jobs over its own (worker) connection
        r = self.submit("pi_split", {"samples": 40000, "parts": 2})
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertAlmostEqual(json.loads(r.stdout), 3.14, delta=0.1)
        s = self.c.stats()
        self.assertEqual((s["submitted"], s["done"], s["rejected"]), (4, 4, 0))
        self.assertEqual(len(s["wlist"]), 1)
        self.assertIn("CURVE on: broker key", self.c.broker.output())
        # the key files may come from the environment or the options alike
        env = dict(self.c.env)
        env.pop("QJOB_CURVE_SECRET")
        env.pop("QJOB_BROKER_KEY")
        r = self.submit("echo", 7, "--curve-secret", self.c.curve["client"] + ".key",
                        "--broker-key", self.c.curve["broker"] + ".pub", env=env)
        self.assertEqual((r.returncode, r.stdout.strip()), (EXIT_OK, "7"), r.stderr)
        # without keys, a CURVE broker does not answer at all
        r = self.submit("echo", 1, env=env)
        self.assertEqual(r.returncode, EXIT_UNREACHABLE, r.stderr)

    def test_unknown_key_gets_nothing_in(self):
        self.curve_cluster()
        stranger = self.c.path("stranger")
        public = keygen(stranger)
        env = dict(self.c.env, QJOB_CURVE_SECRET=stranger + ".key")
        r = self.submit("echo", {"x": 1}, env=env)
        self.assertEqual(r.returncode, EXIT_UNREACHABLE, r.stderr)
        self.assertIn("allows our public key", r.stderr)
        # raw: HELLO and SUBMIT from the unknown key get no answer at all
        s = self.raw(stranger)
        s.send(wire.hello_frame(wire.CLIENT, cid=wire.new_cid()))
        s.send(wire.submit([wire.job(1, "echo", args=wire.pack(1))]))
        self.assertIsNone(wire.recv(s, timeout=1.0))
        s.close(0)
        st = self.c.stats()
        self.assertEqual(st["submitted"], 0)
        self.assertGreaterEqual(st["rejected"], 2)
        log = self.c.broker.output()
        self.assertRegex(log, r"refused a connection from 127\.0\.0\.1 with CURVE key %s"
                         % re.escape(public))

    def test_client_key_cannot_be_a_worker(self):
        keys = self.curve_cluster(worker=False)
        w = self.c.start("qworker", [QWORKER, "--broker", self.c.endpoint, "--procs", "1",
                                     "--curve-secret", keys["client"] + ".key",
                                     "--broker-key", keys["broker"] + ".pub"])
        self.assertEqual(w.p.wait(20), EXIT_USAGE, w.output())
        self.assertIn("refused this worker", w.output())
        # raw: a client key saying HELLO as a worker gets ERROR denied
        s = self.raw(keys["client"])
        with self.assertRaises(wire.Refused) as e:
            wire.hello(s, wire.WORKER, credit=1)
        self.assertEqual(e.exception.code, wire.E_DENIED)
        s.close(0)
        st = self.c.stats()
        self.assertEqual((st["workers"], st["wlist"]), (0, []))
        self.assertGreaterEqual(st["rejected"], 2)
        client_pub = wire.key_file(keys["client"] + ".pub")["public"].decode()
        self.assertIn("refused a HELLO as worker from key %s" % client_pub,
                      self.c.broker.output())

    def test_worker_key_cannot_submit(self):
        keys = self.curve_cluster()
        env = dict(self.c.env, QJOB_CURVE_SECRET=keys["worker"] + ".key")
        r = self.submit("echo", {"x": 1}, env=env)
        self.assertEqual(r.returncode, EXIT_REFUSED, r.stderr)
        self.assertIn("may connect as a worker, not as a client", r.stderr)
        # raw: as a worker, it may submit sub-jobs of jobs it holds only
        s = self.raw(keys["worker"])
        wire.hello(s, wire.WORKER, queues=["elsewhere"], credit=0)
        s.send(wire.submit([wire.job(1, "echo", args=wire.pack(SECRET_ARGS))]))
        acks = wire.expect(s, wire.ACCEPTED)["acks"]
        self.assertEqual((acks[0][1], acks[0][2]), (0, wire.E_ROLE))
        s.close(0)
        st = self.c.stats()
        self.assertEqual(st["submitted"], 0)
        self.assertGreaterEqual(st["rejected"], 1)

    def test_cid_and_routing_id_stay_with_their_key(self):
        keys = self.c.enable_curve()
        allow = self.c.path("clients.d")
        os.mkdir(allow, 0o755)
        other = self.c.path("other")
        keygen(other)
        for k in (keys["client"], other):
            os.link(k + ".pub", os.path.join(allow, os.path.basename(k) + ".pub"))
        self.c.start_broker("--curve-secret", keys["broker"] + ".key", "--clients-allow", allow,
                            "--workers-allow", keys["worker"] + ".pub")
        cid = wire.new_cid()
        a = self.raw(keys["client"])
        wire.hello(a, wire.CLIENT, cid=cid)
        b = self.raw(other)   # allowed too, through the directory
        with self.assertRaises(wire.Refused) as e:
            wire.hello(b, wire.CLIENT, cid=cid)
        self.assertEqual(e.exception.code, wire.E_DENIED)
        self.assertIn("cid belongs to another key", e.exception.text)
        wire.hello(b, wire.CLIENT)   # with its own cid it is welcome
        # a routing id that said HELLO cannot be taken over by another key
        x = self.raw(keys["client"], routing_id=b"rid-7")
        wire.hello(x, wire.CLIENT)
        x.close(0)
        time.sleep(0.2)
        y = self.raw(other, routing_id=b"rid-7")
        with self.assertRaises(wire.Refused) as e:
            wire.request(y, wire.STATS, timeout=5)
        self.assertEqual(e.exception.code, wire.E_DENIED)
        for s in (a, b, y):
            s.close(0)
        self.assertGreaterEqual(self.c.stats()["rejected"], 2)

    # ------------------------------------------------------------ safe defaults

    def test_loose_permissions_refused(self):
        keys = self.c.enable_curve()
        secret = keys["client"] + ".key"
        os.chmod(secret, 0o640)
        r = run([QCLIENT, "--broker", "tcp://127.0.0.1:9", "submit", "echo", "1"], env=self.c.env)
        self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)
        self.assertIn("chmod 600 %s" % secret, r.stderr)
        os.chmod(keys["worker"] + ".key", 0o604)
        r = run([QWORKER, "--broker", "tcp://127.0.0.1:9", "--curve-secret",
                 keys["worker"] + ".key", "--broker-key", keys["broker"] + ".pub"])
        self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)
        self.assertIn("chmod 600", r.stderr)
        data = ["--data-dir", self.c.path("data"), "--bind", "tcp://127.0.0.1:*"]
        os.chmod(keys["broker"] + ".key", 0o644)
        r = run([QBROKER, "--curve-secret", keys["broker"] + ".key", "--clients-allow",
                 keys["client"] + ".pub"] + data)
        self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)
        self.assertIn("chmod 600", r.stderr)
        os.chmod(keys["broker"] + ".key", 0o600)
        os.chmod(keys["client"] + ".pub", 0o664)   # others could add keys
        r = run([QBROKER, "--curve-secret", keys["broker"] + ".key", "--clients-allow",
                 keys["client"] + ".pub"] + data)
        self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)
        self.assertIn("chmod go-w", r.stderr)
        # a secret key is not an allow list, and a key has one role
        os.chmod(keys["client"] + ".pub", 0o644)
        r = run([QBROKER, "--curve-secret", keys["broker"] + ".key", "--clients-allow",
                 keys["broker"] + ".key"] + data)
        self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)
        self.assertIn("public keys only", r.stderr)
        r = run([QBROKER, "--curve-secret", keys["broker"] + ".key", "--clients-allow",
                 keys["client"] + ".pub", "--workers-allow", keys["client"] + ".pub"] + data)
        self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)
        self.assertIn("one role", r.stderr)

    def test_non_loopback_bind_needs_curve_or_insecure(self):
        # Refused before anything is bound: no traffic leaves loopback.
        r = run([QBROKER, "--bind", "tcp://0.0.0.0:0", "--data-dir", self.c.path("d1")])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("refusing to bind tcp://0.0.0.0:0", r.stderr)
        self.assertIn("--curve-secret", r.stderr)
        self.assertNotIn("listening", r.stderr)
        r = run([QBROKER, "--bind", "tcp://*:0", "--data-dir", self.c.path("d2")])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("refusing to bind", r.stderr)
        # --insecure says loudly what it means (on loopback here)
        self.c.start_broker("--insecure")
        self.assertIn("NOT authenticated", self.c.broker.output())
        r = run([QBROKER, "--clients-allow", self.c.path("nothing"), "--data-dir",
                 self.c.path("d3")])
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("need --curve-secret", r.stderr)

    def test_message_limits(self):
        keys = self.curve_cluster(worker=False)
        r = self.submit("t" * 129, 1)
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("task name must be 1 to 128 bytes", r.stderr)
        r = self.submit("echo", 1, "--queue", "q" * 65)
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("queue name must be 1 to 64 bytes", r.stderr)
        r = subprocess.run([QCLIENT, "--broker", self.c.endpoint, "map", "echo"],
                           input=json.dumps("a" * (1 << 20)) + "\n", capture_output=True,
                           text=True, timeout=60, env=self.c.env)
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("at most 1048576 are allowed", r.stderr)
        # over the wire: a field over its limit is refused by the broker, a
        # frame over ZMQ_MAXMSGSIZE never reaches it; it serves on
        s = self.raw(keys["client"])
        wire.hello(s, wire.CLIENT)
        s.send(wire.submit([wire.job(1, "t" * 129)]))
        got = wire.recv(s, timeout=5)
        self.assertIsNotNone(got)
        self.assertEqual((got[0], got[1]["code"]), (wire.ERROR, wire.E_LIMIT))
        s.send(b"QJ" + bytes([1, wire.SUBMIT]) + b"\x00" * (9 << 20))
        s.close(0)
        st = self.c.stats()
        self.assertEqual(st["submitted"], 0)
        self.assertEqual(st["bad_by"].get("limit"), 1)

    # ------------------------------------------------------------ the wire

    def capture(self, curve):
        """Bytes a client and the broker exchanged through a proxy while
        one job with SECRET_ARGS ran."""
        if curve:
            self.curve_cluster()
        else:
            self.c.start_broker()
            self.c.start_worker()
        proxy = Proxy(self.c.endpoint)
        try:
            r = run([QCLIENT, "--broker", proxy.endpoint, "--timeout", "30", "submit", "echo",
                     json.dumps({"x": SECRET_ARGS})], env=self.c.env, timeout=60)
        finally:
            captured = proxy.close()
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"x": SECRET_ARGS})
        self.assertGreater(len(captured), 100)
        return captured

    def test_plaintext_without_curve(self):
        # The check below can fail: without CURVE the args are there in clear.
        self.assertIn(SECRET_ARGS.encode(), self.capture(curve=False))

    def test_no_plaintext_under_curve(self):
        captured = self.capture(curve=True)
        self.assertNotIn(SECRET_ARGS.encode(), captured)
        self.assertNotIn(b"echo", captured)
        self.assertIn(b"CURVE", captured)   # the greeting names the mechanism

    # ------------------------------------------------------------ bench

    def test_bench_over_curve(self):
        """qclient bench measures what CURVE costs: spawned programs with keys
        made for the run, and qfwd as a CURVE server; the temp dir (keys
        included) is removed after."""
        tmp = self.c.path("tmp")
        os.mkdir(tmp)
        env = dict(self.c.env, TMPDIR=tmp)
        r = run([QCLIENT, "bench", "throughput", "--spawn", "--curve", "--vs-baseline",
                 "--jobs", "300", "--window", "50", "--procs", "1", "--json",
                 "--timeout", "60"], env=env, timeout=120)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        doc = json.loads(r.stdout)
        self.assertTrue(doc["config"]["curve"])
        rows = doc["tables"][0]["rows"]
        self.assertEqual([(x["system"], x["jobs"]) for x in rows], [("qjob", 300), ("qfwd", 300)])
        r = run([QCLIENT, "bench", "baseline", "--curve", "--jobs", "200", "--rounds", "20",
                 "--k-max", "2", "--procs", "1", "--json", "--timeout", "60"], env=env,
                timeout=120)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertTrue(json.loads(r.stdout)["config"]["curve"])
        self.assertEqual(os.listdir(tmp), [])
        r = run([QCLIENT, "bench", "throughput", "--curve", "--broker", "tcp://127.0.0.1:9"])
        self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)

    # ------------------------------------------------------------ exec

    def test_exec_off_by_default(self):
        self.c.start_broker()
        self.c.start_worker()
        r = self.submit("exec", {"argv": ["true"]})
        self.assertEqual(r.returncode, EXIT_FAILED, r.stderr)
        self.assertIn("unknown task 'exec'", r.stderr)
        self.assertIn("--allow-exec", r.stderr)

    def test_exec_on(self):
        self.c.start_broker()
        self.c.start_worker("--allow-exec", "--coros", "4")
        r = self.submit("exec", {"argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]})
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"exit": 3, "signal": None, "stdout": "out\n",
                                                "stderr": "err\n", "truncated": False,
                                                "timed_out": False})
        # no shell: the words are passed as they are
        r = self.submit("exec", {"argv": ["echo", "$HOME", ";", "ls"]})
        self.assertEqual(json.loads(r.stdout)["stdout"], "$HOME ; ls\n")
        r = self.submit("exec", {"argv": ["head", "-c", "5000", "/dev/zero"],
                                 "max_output": 100})
        v = json.loads(r.stdout)
        self.assertEqual((len(v["stdout"]), v["truncated"], v["exit"]), (100, True, 0))
        # killed at its timeout; meanwhile the process runs other jobs
        t0 = time.monotonic()
        slow = subprocess.Popen([QCLIENT, "--broker", self.c.endpoint, "--timeout", "30",
                                 "submit", "exec", json.dumps({"argv": ["sleep", "30"],
                                                               "timeout_ms": 5000})],
                                stdout=subprocess.PIPE, text=True, env=self.c.env)
        wait_for(lambda: self.c.stats()["queues"][0]["running"] == 1, what="exec to run")
        r = self.submit("echo", 5)
        self.assertEqual((r.returncode, r.stdout.strip()), (EXIT_OK, "5"), r.stderr)
        self.assertIsNone(slow.poll(), "the echo waited for the exec to end")
        self.assertLess(time.monotonic() - t0, 4.5)
        out, _ = slow.communicate(timeout=30)
        v = json.loads(out)
        self.assertEqual((v["exit"], v["signal"], v["timed_out"]), (None, 9, True))
        r = self.submit("exec", {"argv": ["/nonexistent/cmd"]})
        self.assertEqual(r.returncode, EXIT_FAILED)
        self.assertIn("cannot run '/nonexistent/cmd'", r.stderr)
        r = self.submit("exec", {"argv": "ls"})
        self.assertEqual(r.returncode, EXIT_FAILED)
        self.assertIn("exec takes", r.stderr)

    def test_exec_cancel_kills_the_command(self):
        self.c.start_broker()
        self.c.start_worker("--allow-exec")
        marker = self.c.path("marker")
        r = self.submit("exec", {"argv": ["sh", "-c", "sleep 2; touch %s" % marker]},
                        "--detach")
        job = r.stdout.strip()
        wait_for(lambda: '"running"' in self.c.qclient("status", job).stdout, timeout=10,
                 what="the exec job to run")
        self.c.qclient("cancel", job, check=0)
        r = self.c.qclient("await", job, "--timeout", "10")
        self.assertEqual(json.loads(r.stdout)["status"], "cancelled")
        time.sleep(2.5)
        self.assertFalse(os.path.exists(marker), "the cancelled command ran on")


if __name__ == "__main__":
    harness.main()
