"""Metrics: the broker's /metrics endpoint (--metrics-bind), scraped with curl
during a load and after it, against what was submitted and against
`qclient stats --json`; other paths, garbage HTTP and a half-sent request
while the broker goes on serving; the addresses it refuses."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EXIT_FAILED, EXIT_OK, EXIT_USAGE, QBROKER, wait_for  # noqa: E402

CURL = shutil.which("curl")
QUEUE_ODD = 'fl"a\\ky'          # a queue name whose label needs escaping
N_OK, N_FAIL = 300, 40           # sleep jobs on "default", failing jobs on QUEUE_ODD
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')


def parse_labels(text):
    """{name: value} of a label set '{a="x",b="y"}', undoing the escapes."""
    labels, i = {}, 1
    while i < len(text) - 1:
        eq = text.index("=", i)
        name, i, value = text[i:eq], eq + 2, []
        assert text[eq + 1] == '"', text
        while text[i] != '"':
            if text[i] == "\\":
                value.append({"n": "\n", "\\": "\\", '"': '"'}[text[i + 1]])
                i += 2
            else:
                value.append(text[i])
                i += 1
        labels[name] = "".join(value)
        i += 1
        if text[i] == ",":
            i += 1
    return labels


class Scrape:
    """One /metrics answer, parsed: samples by (name, labels), and the HELP
    and TYPE of each family."""

    def __init__(self, text):
        self.text = text
        self.samples, self.help, self.type = {}, {}, {}
        for line in text.splitlines():
            if line.startswith("# HELP "):
                name, _, doc = line[7:].partition(" ")
                assert name not in self.help, "two HELP lines for " + name
                self.help[name] = doc
            elif line.startswith("# TYPE "):
                name, _, kind = line[7:].partition(" ")
                assert name not in self.type, "two TYPE lines for " + name
                self.type[name] = kind
            else:
                m = SAMPLE.match(line)
                assert m, "not a sample line: %r" % line
                labels = parse_labels(m.group(2)) if m.group(2) else {}
                key = (m.group(1), tuple(sorted(labels.items())))
                assert key not in self.samples, "sample twice: %r" % line
                self.samples[key] = float(m.group(3))

    def get(self, name, **labels):
        return self.samples[(name, tuple(sorted(labels.items())))]

    def by_queue(self, name):
        return {dict(k[1])["queue"]: v for k, v in self.samples.items()
                if k[0] == name and "queue" in dict(k[1])}

    def buckets(self, queue):
        """[(le, cumulative count)] of the dispatch wait histogram, in order."""
        out = []
        for (name, labels), v in self.samples.items():
            d = dict(labels)
            if name == "qjob_dispatch_wait_seconds_bucket" and d["queue"] == queue:
                out.append((float(d["le"]), v))
        return sorted(out)


class MetricsTest(harness.ClusterTest):

    def setUp(self):
        super().setUp()
        if not CURL:
            self.skipTest("no curl (Debian: apt-get install curl)")

    def start(self, *args):
        mfile = self.c.path("metrics-url")
        self.c.start_broker("--metrics-bind", "127.0.0.1:0", "--metrics-file", mfile, *args)
        with open(mfile) as f:
            self.url = f.read().strip()
        self.assertRegex(self.url, r"^http://127\.0\.0\.1:\d+/metrics$")
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def curl(self, url=None):
        """(http status, body) of a GET with curl."""
        r = subprocess.run([CURL, "-s", "--max-time", "5", "-w", "\n%{http_code}",
                            url or self.url], capture_output=True, text=True, timeout=15)
        self.assertEqual(r.returncode, 0, r.stderr)
        body, _, code = r.stdout.rpartition("\n")
        return int(code), body

    def scrape(self):
        r = subprocess.run([CURL, "-sf", "--max-time", "5", self.url], capture_output=True,
                           text=True, timeout=15)
        self.assertEqual(r.returncode, 0, "curl -sf %s failed: %s" % (self.url, r.stderr))
        return Scrape(r.stdout)

    def check_shape(self, s):
        """What holds in any scrape: every sample under a family with HELP and
        TYPE, counters named *_total, histograms whole and monotonic, and no
        queue having finished more jobs than it took."""
        for (name, _), v in s.samples.items():
            family = re.sub(r"_(bucket|sum|count)$", "", name) \
                if name.startswith("qjob_dispatch_wait_seconds") else name
            self.assertIn(family, s.type, "no TYPE for " + name)
            self.assertIn(family, s.help, "no HELP for " + name)
            self.assertTrue(family.startswith("qjob_"), family)
            self.assertGreaterEqual(v, 0, name)
        for family, kind in s.type.items():
            self.assertIn(kind, ("counter", "gauge", "histogram"), family)
            self.assertEqual(kind == "counter", family.endswith("_total"), family)
        self.assertEqual(s.type["qjob_dispatch_wait_seconds"], "histogram")
        for q, count in s.by_queue("qjob_dispatch_wait_seconds_count").items():
            b = s.buckets(q)
            self.assertGreater(len(b), 5)
            self.assertEqual(b[-1][0], float("inf"))
            self.assertEqual([x[1] for x in b], sorted(x[1] for x in b), "buckets of " + q)
            self.assertEqual(b[-1][1], count)
            self.assertGreaterEqual(s.get("qjob_dispatch_wait_seconds_sum", queue=q), 0)
        submitted = s.by_queue("qjob_jobs_submitted_total")
        done, failed = s.by_queue("qjob_jobs_done_total"), s.by_queue("qjob_jobs_failed_total")
        for q in submitted:
            self.assertLessEqual(done[q] + failed[q], submitted[q], q)

    def test_counters_add_up_under_load(self):
        self.start()
        self.c.start_worker("--coros", "4", "--queues", "default," + QUEUE_ODD, procs=1,
                            expect_slots=4)
        s0 = self.scrape()
        self.check_shape(s0)
        self.assertEqual(s0.get("qjob_workers"), 1)
        self.assertEqual(s0.by_queue("qjob_jobs_submitted_total").get("default", 0), 0)

        # The load: two qclient map runs at once, one of them failing on
        # purpose with a retry each.
        ok_in = "".join('{"ms": 20}\n' for _ in range(N_OK))
        fail_in = "".join('{"message": "no %d"}\n' % i for i in range(N_FAIL))
        maps = [subprocess.Popen([harness.QCLIENT, "map", "sleep", "--inflight", "25"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=self.c.env, text=True),
                subprocess.Popen([harness.QCLIENT, "map", "fail", "--queue", QUEUE_ODD,
                                  "--retries", "1", "--backoff", "0.05", "--inflight", "8"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=self.c.env, text=True)]
        self.addCleanup(lambda: [p.kill() for p in maps if p.poll() is None])
        for p, text in zip(maps, (ok_in, fail_in)):
            p.stdin.write(text)
            p.stdin.close()

        # Scrape while it runs: every scrape well formed, counters never
        # going back, and at least one caught the load half done.
        mid, last, deadline = 0, None, time.monotonic() + 90
        while any(p.poll() is None for p in maps) and time.monotonic() < deadline:
            s = self.scrape()
            self.check_shape(s)
            fin = sum(s.by_queue("qjob_jobs_done_total").values()) + \
                sum(s.by_queue("qjob_jobs_failed_total").values())
            if 0 < fin < N_OK + N_FAIL:
                mid += 1
            if last is not None:
                for key, v in s.samples.items():
                    if key[0].endswith("_total") or key[0].endswith("_count"):
                        self.assertGreaterEqual(v, last.samples.get(key, 0), key)
            last = s
            time.sleep(0.05)
        self.assertEqual([p.wait(30) for p in maps], [EXIT_OK, EXIT_FAILED])
        self.assertGreater(mid, 0, "no scrape saw the load in progress")

        s = self.scrape()
        self.check_shape(s)
        sub = s.by_queue("qjob_jobs_submitted_total")
        done = s.by_queue("qjob_jobs_done_total")
        failed = s.by_queue("qjob_jobs_failed_total")
        retried = s.by_queue("qjob_jobs_retried_total")
        count = s.by_queue("qjob_dispatch_wait_seconds_count")
        self.assertEqual(sub, {"default": N_OK, QUEUE_ODD: N_FAIL})
        self.assertEqual(sum(sub.values()), N_OK + N_FAIL)
        self.assertEqual(sum(done.values()) + sum(failed.values()), N_OK + N_FAIL)
        self.assertEqual((done["default"], failed["default"], retried["default"]), (N_OK, 0, 0))
        self.assertEqual((done[QUEUE_ODD], failed[QUEUE_ODD], retried[QUEUE_ODD]),
                         (0, N_FAIL, N_FAIL))
        # Every attempt was dispatched once: the first of each job, and the retries.
        self.assertEqual(count, {"default": N_OK, QUEUE_ODD: 2 * N_FAIL})
        self.assertEqual(s.by_queue("qjob_queue_dead"), {"default": 0, QUEUE_ODD: N_FAIL})
        for gauge in ("qjob_queue_ready", "qjob_queue_delayed", "qjob_queue_running"):
            self.assertEqual(set(s.by_queue(gauge).values()), {0}, gauge)
        self.assertEqual(s.get("qjob_worker_slots_busy"), 0)
        self.assertGreater(s.get("qjob_journal_written_bytes_total"), 0)
        self.assertGreater(s.get("qjob_journal_fsyncs_total"), 0)
        self.assertGreater(s.get("qjob_journal_fsync_seconds_total"), 0)
        self.assertGreater(s.get("qjob_resident_memory_bytes"), 0)
        self.assertEqual(s.get("qjob_bad_frames_total", code="body"), 0)

        # qclient stats --json shows the same figures.
        r = self.c.qclient("stats", "--json", check=EXIT_OK)
        st = json.loads(r.stdout)
        for key in ("submitted", "done", "failed", "retried"):
            self.assertEqual(st[key], sum(s.by_queue("qjob_jobs_%s_total" % key).values()), key)
        self.assertEqual(st["dispatched"], sum(count.values()))
        self.assertEqual(st["slots"], s.get("qjob_worker_slots"))
        self.assertEqual(st["busy"], 0)
        self.assertEqual(st["jbytes"], s.get("qjob_journal_written_bytes_total"))
        self.assertEqual(st["fsyncs"], s.get("qjob_journal_fsyncs_total"))
        self.assertEqual(len(st["wait_le"]) + 1, len(s.buckets("default")))
        for q in st["queues"]:
            self.assertEqual(q["dispatched"], count[q["name"]])
            self.assertEqual(sum(q["wait"]), q["dispatched"])
            cum = [int(c) for _, c in s.buckets(q["name"])]
            self.assertEqual(cum, [sum(q["wait"][:i + 1]) for i in range(len(q["wait"]))])
            self.assertAlmostEqual(q["wait_us"] / 1e6,
                                   s.get("qjob_dispatch_wait_seconds_sum", queue=q["name"]),
                                   places=5)
            # Where the finished jobs' time went, by SUBMIT size: a series
            # per size class that has jobs, as in the stats.
            n = len(q["b_jobs"])
            want = {(str(1 << i) if i in (0, n - 1) else "%d-%d" % (1 << i, (2 << i) - 1)): i
                    for i in range(n) if q["b_jobs"][i]}
            got = {dict(k[1])["submit"] for k in s.samples
                   if k[0] == "qjob_jobs_finished_by_submit_total" and
                   dict(k[1])["queue"] == q["name"]}
            self.assertEqual(got, set(want))
            self.assertEqual(sum(q["b_jobs"]), N_OK if q["name"] == "default" else N_FAIL)
            for size, i in want.items():
                lab = {"queue": q["name"], "submit": size}
                self.assertEqual(s.get("qjob_jobs_finished_by_submit_total", **lab),
                                 q["b_jobs"][i])
                self.assertAlmostEqual(s.get("qjob_job_compute_by_submit_seconds_total", **lab),
                                       q["b_compute_us"][i] / 1e6, places=5)
                self.assertAlmostEqual(s.get("qjob_job_overhead_by_submit_seconds_total", **lab),
                                       q["b_comm_us"][i] / 1e6, places=5)

    def test_other_paths_and_garbage(self):
        self.start()
        base = self.url[:-len("/metrics")]
        self.assertEqual(self.curl(base + "/")[0], 404)
        self.assertEqual(self.curl(base + "/metrics/x")[0], 404)
        self.assertEqual(self.curl(base + "/nope?x=1")[0], 404)
        code, body = self.curl()
        self.assertEqual(code, 200)
        self.assertIn("# TYPE qjob_jobs_submitted_total counter", body)
        r = subprocess.run([CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                            "--data", "x", self.url], capture_output=True, text=True, timeout=15)
        self.assertEqual(r.stdout, "405")
        r = subprocess.run([CURL, "-sI", self.url], capture_output=True, text=True, timeout=15)
        self.assertIn("text/plain; version=0.0.4", r.stdout)

        # A half-sent request and garbage, held open: neither stalls the
        # broker nor the endpoint (a connection that never completes a
        # request is closed after the idle timeout).
        held = []
        for junk in (b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
                     b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),
                     b"GET " + b"A" * 100000 + b" HTTP/1.1\r\n\r\n", b"\r\n\r\n\r\n",
                     os.urandom(4096), b"GARBAGE / HTTP/9.9\r\n\r\n"):
            g = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            held.append(g)
            try:
                g.sendall(junk)
            except (ConnectionResetError, BrokenPipeError):
                pass
        answer = held[-1].recv(65536)
        self.assertRegex(answer, rb"^HTTP/1\.1 [45]\d\d ")
        self.c.start_worker(procs=1)
        r = self.c.qclient("submit", "echo", '{"a": 1}', check=EXIT_OK)
        self.assertEqual(json.loads(r.stdout), {"a": 1})
        s = self.scrape()
        self.check_shape(s)
        self.assertEqual(s.get("qjob_jobs_done_total", queue="default"), 1)
        for g in held:
            g.close()
        self.assertTrue(self.c.broker.alive())
        self.assertIsNotNone(self.c.stats())

    def test_refused_addresses_and_usage(self):
        data = self.c.path("data")
        for bind, want in (("10.11.12.13:9187", "refusing to serve metrics"),
                           ("127.0.0.1", "HOST:PORT"), ("127.0.0.1:70000", "HOST:PORT")):
            r = subprocess.run([QBROKER, "--bind", "ipc://" + self.c.path("b.sock"),
                                "--data-dir", data, "--metrics-bind", bind],
                               capture_output=True, text=True, timeout=30, env=self.c.env)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(want, r.stderr)
        r = subprocess.run([QBROKER, "--metrics-file", self.c.path("m")], capture_output=True,
                           text=True, timeout=30, env=self.c.env)
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("--metrics-bind", r.stderr)
        # The port in use: a clear error, not a broker without its metrics.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            r = subprocess.run([QBROKER, "--bind", "ipc://" + self.c.path("b.sock"),
                                "--data-dir", data, "--metrics-bind",
                                "127.0.0.1:%d" % taken.getsockname()[1]],
                               capture_output=True, text=True, timeout=30, env=self.c.env)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot serve metrics", r.stderr)

    def test_no_metrics_by_default(self):
        self.c.start_broker()
        wait_for(lambda: "ready" in self.c.broker.output(), what="the ready line")
        self.assertNotIn("metrics at", self.c.broker.output())

if __name__ == "__main__":
    harness.main()
