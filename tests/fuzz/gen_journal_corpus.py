#!/usr/bin/python3
"""Write the seed corpus for fuzz_journal: journal segments (server/JOURNAL.md).

The records are built here from JOURNAL.md, with a CRC-32C written in
Python, not with the C encoder, so they double as a check of the spec:
every seed not named damaged-* must read back intact in C
(QJ_FUZZ_EXPECT_VALID=1 fuzz_journal -runs=0 corpus_journal checks it;
run-fuzz.sh does).

Usage: /usr/bin/python3 tests/fuzz/gen_journal_corpus.py [OUTDIR]
       (default: corpus_journal next to this file)
Rerun after changing the format (JOURNAL.md §6, step 4).
"""
import os
import struct
import sys

JOB, DISPATCH, REQUEUE, FINISH, CANCEL, NEXT_ID, END = range(1, 8)
LOG, SNAPSHOT = 1, 2
VERSION = 2
T = 1700000000000000          # a unix µs timestamp


def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = _crc_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


def header(kind, number):
    h = b"QJJL" + struct.pack("<HBBQI", VERSION, kind, 0, number, 0)
    return h + struct.pack("<I", crc32c(h))


def record(rtype, payload):
    head = bytes([0xF5, 0x4A, rtype, 0]) + struct.pack("<I", len(payload))
    return head + struct.pack("<I", crc32c(payload, crc32c(head))) + payload


def s8(b):
    return bytes([len(b)]) + b


def s16(b):
    return struct.pack("<H", len(b)) + b


def s32(b):
    return struct.pack("<I", len(b)) + b


# Grouped records (§3): a head, then one or more items.

def job_item(id, task=b"echo", key=b"", args=b"\x81\xa1x\x01", ref=0, parent=0, dispatched=0,
             due=0, attempt=0, pri=0, flags=0, retries=0):
    has, opt = 0, b""
    for bit, v in ((1, ref), (2, parent), (4, dispatched), (8, due)):
        if v:
            has |= bit
            opt += struct.pack("<Q", v)
    p = struct.pack("<QB", id, has) + opt
    p += struct.pack("<QIIHHbB", T - 50, 30000, 1000, retries, attempt, pri, flags)
    return p + s8(task) + s8(key) + s32(args)


def jobs(*items, queue=b"default", cid=b"", queued=T):
    return record(JOB, struct.pack("<Q", queued) + s8(cid) + s8(queue) + b"".join(items))


def job(id, queue=b"default", cid=b"", **kw):
    return jobs(job_item(id, **kw), queue=queue, cid=cid)


def dispatch(*leases, at=T + 200):
    """leases: (id, attempt) pairs."""
    return record(DISPATCH, struct.pack("<Q", at) +
                  b"".join(struct.pack("<QH", i, a) for i, a in leases))


def finish_item(id, st=0, attempt=1, val=b"\xc0", err=b""):
    return struct.pack("<QBHQQ", id, st, attempt, T + 300, T + 800) + s32(val) + s16(err)


def finishes(*items, wk=b"host:7/0", final=T + 900):
    return record(FINISH, struct.pack("<Q", final) + s16(wk) + b"".join(items))


def requeue(id, attempt, due=0, front=1):
    return record(REQUEUE, struct.pack("<QHQB", id, attempt, due, front))


def number(rtype, n):
    return record(rtype, struct.pack("<Q", n))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                            "corpus_journal")
    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):
        os.unlink(os.path.join(out, old))
    cid = bytes(range(16))
    first = job(1, cid=cid, ref=1, key=b"order-1", pri=5)
    life = (first + dispatch((1, 1)) + requeue(1, 1, due=T + 1000000, front=0) +
            dispatch((1, 2)) + finishes(finish_item(1, attempt=2)))
    turn = (jobs(*(job_item(i, ref=i) for i in range(10, 14)), cid=cid) +
            dispatch(*((i, 1) for i in range(10, 14))) +
            finishes(finish_item(10), finish_item(12, st=1, val=b"", err=b"boom")) +
            finishes(finish_item(11), wk=b"host:8/0") + number(CANCEL, 13))
    seeds = {
        "job": job(7, cid=cid, ref=3, key=b"k", pri=-128, flags=3, retries=2),
        "job-every-field": job(7, cid=cid, ref=3, parent=2, dispatched=T + 5, due=T + 10,
                               attempt=4, key=b"k", pri=1),
        "job-minimal": job(8, task=b"t", queue=b"q", args=b""),
        "jobs-of-a-submit": jobs(*(job_item(i, ref=i, pri=i % 3) for i in range(20, 30)),
                                 cid=cid),
        "dispatch": dispatch((7, 1)),
        "dispatch-of-a-turn": dispatch(*((i, 1 + i % 2) for i in range(20, 30))),
        "requeue": requeue(7, 0),
        "finish-ok": finishes(finish_item(7)),
        "finish-error": finishes(finish_item(9, st=1, val=b"", err=b"boom: it failed"), wk=b""),
        "finish-of-a-worker": finishes(*(finish_item(i) for i in range(20, 30))),
        "cancel": number(CANCEL, 7),
        "next-id": number(NEXT_ID, 1 << 40),
        "life-of-a-job": life,
        "turn": turn,
        "segment": header(LOG, 3) + life + turn + job(2) + number(CANCEL, 2),
        "snapshot": (header(SNAPSHOT, 5) + number(NEXT_ID, 100) + job(3) + job(4, due=T + 10**6)
                     + job(6, dispatched=T + 1) + dispatch((6, 1)) + job(5)
                     + finishes(finish_item(5)) + number(END, 7)),
    }
    bad = bytearray(life)
    bad[len(first) + 14] ^= 0xFF
    seeds["damaged-middle"] = bytes(bad)
    seeds["damaged-torn-tail"] = turn[:-7]
    seeds["damaged-header"] = life[:5] + b"\x7f" + life[6:]
    # An intact record whose last item is cut: its checksum holds, its
    # payload does not.
    cut = jobs(job_item(40), job_item(41))
    seeds["damaged-item-cut"] = record(JOB, cut[12:-3])
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(data))
    print("wrote %d seeds to %s" % (len(seeds), out))


if __name__ == "__main__":
    main()
