"""qclient bench: every mode on tiny sizes, to check that it works and
that its output has the right shape -- not how fast anything is.

Modes run either with --spawn (qclient starts its own qbroker, qworker
and qfwd, and must stop them) or against a harness cluster.  Each checks
the table or JSON shape and that the figures are positive; --svg files
must parse as XML with an <svg> root, --csv files as CSV.
"""
import csv
import json
import math
import os
import socket
import xml.etree.ElementTree as ET

import harness

SVG_NS = "{http://www.w3.org/2000/svg}"
TIMEOUT = ["--timeout", "60"]


def free_port():
    """A port nothing listens on (bound, read back, released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class BenchTest(harness.ClusterTest):

    def setUp(self):
        super().setUp()
        # qclient bench makes its temp dir (logs, endpoint files) under
        # $TMPDIR: point it into the cluster's dir to check it is removed.
        self.tmp = self.c.path("tmp")
        os.mkdir(self.tmp)
        self.c.env["TMPDIR"] = self.tmp

    def bench(self, *args, check=0, timeout=90):
        return self.c.qclient("bench", *args, check=check, timeout=timeout)

    def bench_json(self, *args):
        r = self.bench(*args, "--json", *TIMEOUT)
        doc = json.loads(r.stdout)
        self.assertIn("config", doc)
        return doc

    def table(self, doc, name):
        for t in doc["tables"]:
            if t["name"] == name:
                keys = [c["key"] for c in t["columns"]]
                for row in t["rows"]:
                    self.assertEqual(sorted(row), sorted(keys))
                return t
        self.fail("no table %r in %s" % (name, [t["name"] for t in doc["tables"]]))

    def assert_positive(self, rows, *keys):
        for row in rows:
            for k in keys:
                v = row[k]
                self.assertIsInstance(v, (int, float), "%s in %s" % (k, row))
                self.assertTrue(math.isfinite(v) and v > 0, "%s = %r in %s" % (k, v, row))

    def assert_svg(self, path):
        root = ET.parse(path).getroot()
        self.assertEqual(root.tag, SVG_NS + "svg")
        self.assertTrue(root.findall(".//%spath" % SVG_NS), "the plot draws no line")
        self.assertTrue(root.findall(".//%stext" % SVG_NS), "the plot has no labels")

    def read_csv(self, path):
        """The tables of a --csv file: {name: [row dicts]}."""
        tables, header = {}, None
        with open(path, newline="") as f:
            for rec in csv.reader(f):
                if rec and rec[0] == "table":
                    header = rec
                    continue
                self.assertIsNotNone(header, "a CSV row before any heading")
                self.assertEqual(len(rec), len(header), rec)
                tables.setdefault(rec[0], []).append(dict(zip(header[1:], rec[1:])))
        return tables

    def assert_cleaned_up(self, keep_logs=False):
        """The run left no program running, and removed its temp dir (or,
        if keep_logs, kept it for its logs)."""
        self.assertEqual(len(os.listdir(self.tmp)), 1 if keep_logs else 0)
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            self.assertNotIn(self.tmp, cmd, "pid %s still runs: %s" % (pid, cmd))

    # ------------------------------------------------------------ modes

    def test_split_spawn(self):
        svg, csvf = self.c.path("split.svg"), self.c.path("split.csv")
        doc = self.bench_json("split", "--spawn", "--work", "2^16", "--max-n", "16",
                              "--repeat", "2", "--svg", svg, "--csv", csvf)
        self.assertEqual(doc["mode"], "split")
        self.assertTrue(doc["config"]["spawned"])
        self.assertEqual(doc["config"]["slots"], 2)
        t = self.table(doc, "split")
        self.assertEqual([r["n"] for r in t["rows"]], [1, 2, 4, 8, 16])
        self.assertEqual([r["job_size"] for r in t["rows"]], [65536 >> k for k in range(5)])
        self.assert_positive(t["rows"], "median_s", "min_s", "max_s", "speedup", "jobs_per_s",
                             "client_cpu_us", "server_cpu_us")
        self.assertEqual(t["meta"]["runs"], 2)
        for r in t["rows"]:
            self.assertLessEqual(r["min_s"], r["median_s"])
            self.assertLessEqual(r["median_s"], r["max_s"])
        self.assertEqual(t["rows"][0]["speedup"], 1)
        # Rounds: n = 2 (the worker slots) is the reference of each round.
        self.assertEqual(t["meta"]["ref_n"], 2)
        self.assertEqual([t["rows"][1][k] for k in ("vs_ref", "vs_ref_min", "vs_ref_max")],
                         [1, 1, 1])
        self.assert_positive(t["rows"], "vs_ref", "vs_ref_min", "vs_ref_max")
        for r in t["rows"]:
            self.assertLessEqual(r["vs_ref_min"], r["vs_ref"])
            self.assertLessEqual(r["vs_ref"], r["vs_ref_max"])
        # --fit-from defaults to max-n / 16 = 1 here: every row is fitted.
        self.assertIn("overhead_us", t["meta"])
        self.assertTrue(all(r["fit_s"] is not None for r in t["rows"]))
        self.assertTrue(any("per-job overhead" in n for n in t["notes"]))
        self.assert_svg(svg)
        rows = self.read_csv(csvf)["split"]
        self.assertEqual([int(r["n"]) for r in rows], [1, 2, 4, 8, 16])
        self.assertTrue(all(float(r["median_s"]) > 0 for r in rows))
        self.assert_cleaned_up()

    def test_split_table_and_fit_range(self):
        r = self.bench("split", "--spawn", "--work", "4096", "--min-n", "2", "--max-n", "8",
                       "--repeat", "1", "--fit-from", "4", *TIMEOUT)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("split:"), r.stdout)
        self.assertEqual(lines[1].split()[:2], ["n", "samples/job"])
        body = [l.split() for l in lines[3:6]]
        self.assertEqual([b[0] for b in body], ["2", "4", "8"])
        self.assertEqual(body[0][-1], "-")   # n = 2 is outside the fit
        self.assertIn("n >= 4, 2 points", r.stdout)
        self.assert_cleaned_up()

    def test_batch_against_cluster(self):
        self.c.start_broker()
        self.c.start_worker(procs=2)
        svg = self.c.path("batch.svg")
        doc = self.bench_json("--broker", self.c.endpoint, "batch", "--jobs", "200",
                              "--k-min", "2", "--k-max", "8", "--vs-baseline", "--repeat", "1",
                              "--svg", svg)
        self.assertFalse(doc["config"]["spawned"])
        t = self.table(doc, "batch")
        self.assertEqual([r["k"] for r in t["rows"]], [2, 4, 8])
        self.assertEqual([r["messages"] for r in t["rows"]], [100, 50, 25])
        self.assert_positive(t["rows"], "secs", "jobs_per_s", "us_per_job",
                             "baseline_jobs_per_s", "vs_baseline")
        # One run: no spread to show.
        self.assertEqual(t["meta"]["runs"], 1)
        self.assertNotIn("vs_baseline_min", t["rows"][0])
        self.assert_svg(svg)
        self.assert_cleaned_up()   # the qfwd it started
        # Every job reached the broker and finished (as many warm-up jobs too).
        s = self.c.stats()
        self.assertEqual(s["done"], 3 * (200 + 200))

    def assert_paired(self, t, runs):
        """t's figures are medians over runs, with the spread of the
        paired ratios to qfwd."""
        self.assertEqual(t["meta"]["runs"], runs)
        self.assertTrue(any("medians of %d runs" % runs in n for n in t["notes"]), t["notes"])
        for r in t["rows"]:
            lo, med, hi = r["vs_baseline_min"], r["vs_baseline"], r["vs_baseline_max"]
            self.assert_positive([r], "vs_baseline_min", "vs_baseline", "vs_baseline_max")
            self.assertTrue(lo <= med <= hi, r)

    def test_batch_repeat_paired(self):
        self.c.start_broker()
        self.c.start_worker(procs=2)
        doc = self.bench_json("--broker", self.c.endpoint, "batch", "--jobs", "200",
                              "--k-min", "2", "--k-max", "8", "--vs-baseline", "--repeat", "2")
        self.assertEqual(doc["config"]["repeat"], 2)
        t = self.table(doc, "batch")
        self.assertEqual([r["k"] for r in t["rows"]], [2, 4, 8])
        self.assert_positive(t["rows"], "secs", "jobs_per_s", "us_per_job",
                             "baseline_jobs_per_s")
        self.assert_paired(t, 2)
        self.assert_cleaned_up()
        # Per k: one warm-up of 200 jobs (N < 1000), then 2 timed runs of 200.
        self.assertEqual(self.c.stats()["done"], 3 * (200 + 2 * 200))

    def test_throughput_repeat_paired(self):
        self.c.start_broker()
        self.c.start_worker(procs=2)
        args = ("--broker", self.c.endpoint, "throughput", "--jobs", "300", "--window", "50",
                "--vs-baseline", "--repeat", "2")
        t = self.table(self.bench_json(*args), "throughput")
        self.assertEqual([r["system"] for r in t["rows"]], ["qjob", "qfwd"])
        self.assert_positive(t["rows"], "secs", "jobs_per_s", "us_per_job")
        self.assert_paired(t, 2)
        # qfwd against itself, run by run.
        qfwd = t["rows"][1]
        self.assertEqual([qfwd["vs_baseline_min"], qfwd["vs_baseline"], qfwd["vs_baseline_max"]],
                         [1, 1, 1])
        # The text form shows the spread inside the ratio's column.
        r = self.bench(*args, *TIMEOUT)
        line = [l for l in r.stdout.splitlines() if l.startswith("qjob")][0]
        self.assertRegex(line, r"\d\.\d{3} \(\d+\.\d{3}-\d+\.\d{3}\)$")
        self.assertNotIn("vs qfwd min", r.stdout)
        self.assertIn("medians of 2 runs", r.stdout)
        self.assert_cleaned_up()
        # Each of the 2 invocations: a warm-up of 300 jobs, then 2 runs of 300.
        self.assertEqual(self.c.stats()["done"], 2 * (300 + 2 * 300))

    def test_latency_spawn(self):
        csvf = self.c.path("lat.csv")
        r = self.bench("latency", "--spawn", "--rounds", "60", "--warmup", "5", "--csv", csvf,
                       *TIMEOUT)
        self.assertIn("p99.9", r.stdout)
        rows = self.read_csv(csvf)["latency"]
        self.assertEqual([x["stat"] for x in rows], ["p50", "p90", "p99", "p99.9", "max", "mean"])
        us = [float(x["us"]) for x in rows]
        self.assertTrue(all(v > 0 for v in us), us)
        self.assertTrue(us[0] <= us[1] <= us[2] <= us[3] <= us[4], us)
        self.assert_cleaned_up()

    def test_throughput_vs_baseline(self):
        doc = self.bench_json("throughput", "--spawn", "--jobs", "300", "--window", "50",
                              "--vs-baseline")
        t = self.table(doc, "throughput")
        self.assertEqual([r["system"] for r in t["rows"]], ["qjob", "qfwd"])
        self.assertTrue(all(r["jobs"] == 300 and r["window"] == 50 for r in t["rows"]))
        self.assert_positive(t["rows"], "secs", "jobs_per_s", "us_per_job", "vs_baseline")
        self.assertEqual(t["rows"][1]["vs_baseline"], 1)
        # --repeat defaults to 3 in every mode.
        self.assertEqual(doc["config"]["repeat"], 3)
        self.assert_paired(t, 3)
        self.assert_cleaned_up()

    def test_sleep_jobs_on_coroutines(self):
        """The concurrency figure of the coroutine workers: 200 sleep jobs of
        100 ms on ONE worker process with 200 coroutines take about 100 ms
        of wall time, not 20 s (bounded here at 20 % of it, as the issue
        asks; the README quotes the 1,000-job run)."""
        doc = self.bench_json("throughput", "--spawn", "--procs", "1", "--coros", "200",
                              "--task", "sleep", "--args", '{"ms": 100}', "--jobs", "200",
                              "--window", "200")
        row = self.table(doc, "throughput")["rows"][0]
        self.assertEqual(row["jobs"], 200)
        self.assertLess(row["secs"], 0.2 * 200 * 0.1)
        self.assertGreaterEqual(row["secs"], 0.1)   # each job did sleep its 100 ms
        self.assert_cleaned_up()

    def test_baseline(self):
        svg, csvf = self.c.path("base.svg"), self.c.path("base.csv")
        doc = self.bench_json("baseline", "--jobs", "500", "--rounds", "50", "--k-max", "4",
                              "--procs", "1", "--svg", svg, "--csv", csvf)
        self.assertEqual([t["name"] for t in doc["tables"]], ["latency", "throughput", "batch"])
        self.assert_positive(self.table(doc, "latency")["rows"], "us")
        self.assert_positive(self.table(doc, "throughput")["rows"], "jobs_per_s")
        batch = self.table(doc, "batch")
        self.assertEqual([r["k"] for r in batch["rows"]], [1, 2, 4])
        self.assert_positive(batch["rows"], "jobs_per_s", "messages")
        self.assertEqual(doc["config"]["fwd_workers"], 1)
        self.assert_svg(svg)
        self.assertEqual(sorted(self.read_csv(csvf)), ["batch", "latency", "throughput"])
        self.assert_cleaned_up()

    # ------------------------------------------------------------ refusals

    def test_usage_errors(self):
        for args in (["bench"], ["bench", "nope"], ["bench", "split", "extra"],
                     ["bench", "split", "--min-n", "3"],
                     ["bench", "split", "--min-n", "64", "--max-n", "8"],
                     ["bench", "batch", "--k-min", "3"],
                     ["bench", "batch", "--k-min", "16", "--k-max", "8"],
                     ["bench", "throughput", "--svg", self.c.path("x.svg")],
                     ["bench", "baseline", "--spawn"],
                     ["bench", "latency", "--spawn", "--broker", "tcp://127.0.0.1:1"],
                     ["bench", "batch", "--jobs", "0"], ["bench", "batch", "--bogus"],
                     ["bench", "throughput", "--args", "{not json"]):
            r = self.c.qclient(*args, timeout=30)
            self.assertEqual(r.returncode, harness.EXIT_USAGE, "%s: %s" % (args, r.stderr))
            self.assertIn("qclient bench", r.stderr)
        r = self.c.qclient("bench", "--help", check=0)
        self.assertIn("split", r.stdout)

    def test_unreachable_broker(self):
        r = self.c.qclient("--broker", "tcp://127.0.0.1:%d" % free_port(), "bench", "latency",
                           "--connect-timeout", "0.5", timeout=30)
        self.assertEqual(r.returncode, harness.EXIT_UNREACHABLE, r.stderr)
        self.assertIn("cannot reach the broker", r.stderr)

    def test_broker_without_workers(self):
        self.c.start_broker()
        r = self.c.qclient("--broker", self.c.endpoint, "bench", "throughput", "--jobs", "10",
                           timeout=30)
        self.assertEqual(r.returncode, harness.EXIT_FAILED, r.stderr)
        self.assertIn("no workers", r.stderr)

    def test_job_failure_is_reported(self):
        # 'fail' fails every job: the run must say so, not print figures.
        r = self.bench("throughput", "--spawn", "--task", "fail", "--jobs", "20", *TIMEOUT,
                       check=None)
        self.assertEqual(r.returncode, harness.EXIT_FAILED, r.stderr)
        self.assertIn("failed", r.stderr)
        self.assertEqual(r.stdout, "")
        # Its logs are kept for a look, and said where.
        self.assertIn("logs", r.stderr)
        self.assert_cleaned_up(keep_logs=True)


if __name__ == "__main__":
    harness.main()
