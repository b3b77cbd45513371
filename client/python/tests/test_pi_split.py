"""examples/pi_split.py against a real broker and worker, with few samples."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("QJOB_SOURCE_DIR") or os.path.join(HERE, "..", "..", "..")
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))

import harness  # noqa: E402

EXAMPLE = os.path.join(HERE, "..", "examples", "pi_split.py")


class PiSplit(harness.ClusterTest):
    def example(self, *args):
        return subprocess.run([sys.executable, EXAMPLE] + list(args), capture_output=True,
                              text=True, timeout=120, env=self.c.env)

    def test_table_and_fit(self):
        self.c.start_broker()
        self.c.start_worker(procs=2)
        r = self.example("--broker", self.c.endpoint, "--samples", "65536", "--max-split", "16",
                         "--repeat", "2", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual([row["jobs"] for row in out["rows"]], [1, 2, 4, 8, 16])
        self.assertEqual([row["samples_per_job"] for row in out["rows"]],
                         [65536, 32768, 16384, 8192, 4096])
        for row in out["rows"]:
            self.assertAlmostEqual(row["pi"], 3.14159, delta=0.05)
            self.assertGreater(row["wall_ms"], 0)
        self.assertEqual(out["rows"][0]["speedup"], 1.0)
        self.assertGreaterEqual(out["slots"], 2)
        self.assertEqual(set(out["fit"]), {"fixed_ms", "work_ms", "per_job_us"})

        r = self.example("--samples", "4096", "--max-split", "4", "--repeat", "1")
        self.assertEqual(r.returncode, 0, r.stderr)       # $QJOB_BROKER, text table
        lines = r.stdout.splitlines()
        self.assertIn("samples/job", lines[1])
        self.assertEqual([int(line.split()[0]) for line in lines[2:5]], [1, 2, 4])
        self.assertIn("fit: wall =", lines[-1])

    def test_unreachable_broker(self):
        r = self.example("--broker", "ipc://" + self.c.path("nobody"), "--connect-timeout",
                         "0.3")
        self.assertEqual(r.returncode, 4)
        self.assertIn("no answer from the broker", r.stderr)


if __name__ == "__main__":
    harness.main()
