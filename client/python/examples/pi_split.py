#!/usr/bin/python3
"""Estimate pi by Monte Carlo, split into 1, 2, 4 ... up to --max-split jobs.

The seed experiment of qjob, from Python: the same 2^25 samples are cut into
more and more `pi` jobs, and each split is timed from the first submit to
the last result.  While there are fewer jobs than worker slots, more jobs
means more parallelism; past that, every job only adds its overhead
(submit, dispatch, result: wire, broker, worker and this client).  The table
shows where the two cross, and a least-squares fit of

    wall(n) = fixed + work / min(n, slots) + n * per_job

puts a number on the per-job overhead.

    examples/pi_split.py --broker tcp://127.0.0.1:5555
    examples/pi_split.py --samples 65536 --max-split 64 --repeat 1 --json
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import qjob  # noqa: E402


async def split_once(client, samples, n, seed):
    """Run samples as n pi jobs; returns the combined estimate."""
    share = [samples // n + (i < samples % n) for i in range(n)]
    jobs = [client.submit_nowait("pi", samples=share[i], seed=seed + i) for i in range(n)]
    # client.gather waits on the jobs without a task per job (asyncio.gather
    # works too, at some tens of microseconds per job more)
    estimates = await client.gather(*jobs)
    return sum(e * k for e, k in zip(estimates, share)) / samples


def fit(rows, slots):
    """Least squares of wall = fixed + work/min(n, slots) + n*per_job over
    rows of (n, wall seconds).  Returns (fixed, work, per_job) in seconds,
    or None if the rows cannot determine them."""
    xs = [(1.0, 1.0 / min(n, slots), float(n)) for n, _ in rows]
    ys = [wall for _, wall in rows]
    if len(rows) < 3:
        return None
    # normal equations A^T A p = A^T y, solved by Gaussian elimination
    a = [[sum(x[i] * x[j] for x in xs) for j in range(3)] +
         [sum(x[i] * y for x, y in zip(xs, ys))] for i in range(3)]
    for col in range(3):
        pivot = max(range(col, 3), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12 * max(1.0, abs(a[0][0])):
            return None
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(3):
            if r != col:
                f = a[r][col] / a[col][col]
                a[r] = [v - f * w for v, w in zip(a[r], a[col])]
    return tuple(a[i][3] / a[i][i] for i in range(3))


async def main(opts):
    async with qjob.Client(opts.broker, connect_timeout=opts.connect_timeout) as client:
        stats = await client.stats()
        slots = sum(w.get("slots", 0) for w in stats.get("wlist", []))
        if slots == 0:
            print("pi_split: the broker at %s has no workers: start qworker first"
                  % client.broker, file=sys.stderr)
            return 1
        splits = []
        n = 1
        while n <= min(opts.max_split, opts.samples):
            splits.append(n)
            n *= 2
        if not opts.json:
            print("%d samples, %d worker slots, median of %d run(s)"
                  % (opts.samples, slots, opts.repeat))
            print("%6s %12s %10s %9s %12s" % ("jobs", "samples/job", "wall ms", "speed-up",
                                              "pi"))
        rows = []
        for n in splits:
            walls = []
            for r in range(opts.repeat):
                t0 = time.perf_counter()
                pi = await split_once(client, opts.samples, n, seed=1 + r * 65536)
                walls.append(time.perf_counter() - t0)
            wall = statistics.median(walls)
            rows.append({"jobs": n, "samples_per_job": opts.samples // n,
                         "wall_ms": wall * 1e3, "speedup": rows[0]["wall_ms"] / (wall * 1e3)
                         if rows else 1.0, "pi": pi})
            if not opts.json:
                r = rows[-1]
                print("%6d %12d %10.1f %9.2f %12.8f" % (n, r["samples_per_job"], r["wall_ms"],
                                                        r["speedup"], pi), flush=True)
        p = fit([(r["jobs"], r["wall_ms"] / 1e3) for r in rows], slots)
        model = None if p is None else {"fixed_ms": p[0] * 1e3, "work_ms": p[1] * 1e3,
                                        "per_job_us": p[2] * 1e6}
        if opts.json:
            print(json.dumps({"samples": opts.samples, "slots": slots, "repeat": opts.repeat,
                              "rows": rows, "fit": model}))
        elif model is None:
            print("too few splits to fit the overhead (need 3 or more)")
        else:
            print("fit: wall = %.1f ms + %.1f ms / min(n, %d) + n x %.1f us per job"
                  % (model["fixed_ms"], model["work_ms"], slots, model["per_job_us"]))
    return 0


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--broker", default=None,
                    help="broker endpoint (default $QJOB_BROKER, else tcp://127.0.0.1:5555)")
    ap.add_argument("--samples", type=int, default=2 ** 25, help="samples in all (2^25)")
    ap.add_argument("--max-split", type=int, default=4096, help="most jobs to split into")
    ap.add_argument("--repeat", type=int, default=3, help="runs per split; the median counts")
    ap.add_argument("--connect-timeout", type=float, default=5.0)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead")
    opts = ap.parse_args(argv)
    if opts.samples < 1 or opts.max_split < 1 or opts.repeat < 1:
        ap.error("--samples, --max-split and --repeat must be at least 1")
    return opts


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
    except qjob.BrokerUnreachable as e:
        print("pi_split: %s" % e, file=sys.stderr)
        sys.exit(4)
    except qjob.QjobError as e:
        print("pi_split: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
