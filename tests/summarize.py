"""Counts meson test results.

  summarize.py TESTLOG.json NAME   -> one line "passed failed errors NAME" (for run-all.sh)
  summarize.py --total FILE        -> per-run lines, then "N passed, N failed"
"""
import json
import sys


def count(path):
    passed = failed = 0
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                r = json.loads(line)
                if r.get("result") in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                else:
                    failed += 1
    except OSError:
        return 0, 0, 1
    return passed, failed, 0


def main():
    if sys.argv[1] == "--total":
        tp = tf = 0
        with open(sys.argv[2]) as f:
            for line in f:
                p, fl, e, name = line.split(None, 3)
                p, fl, e = int(p), int(fl), int(e)
                print("  %-16s %d passed, %d failed%s" % (name.strip(), p, fl + e,
                                                          " (build or setup failed)" if e else ""))
                tp += p
                tf += fl + e
        print("%d passed, %d failed" % (tp, tf))
    else:
        p, fl, e = count(sys.argv[1])
        print(p, fl, e, sys.argv[2])


main()
