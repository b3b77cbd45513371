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
VERSION = 1


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


def job(id, task=b"echo", queue=b"default", key=b"", args=b"\x81\xa1x\x01", cid=b"",
        ref=0, pri=0, due=0, attempt=0, flags=0, retries=0):
    p = struct.pack("<QQQQQQQIIHHbB", id, ref, 0, 1700000000000000, 1700000000000100, 0, due,
                    30000, 1000, retries, attempt, pri, flags)
    return record(JOB, p + s8(cid) + s8(queue) + s8(task) + s8(key) + s32(args))


def dispatch(id, attempt):
    return record(DISPATCH, struct.pack("<QHQ", id, attempt, 1700000000000200))


def requeue(id, attempt, due=0, front=1):
    return record(REQUEUE, struct.pack("<QHQB", id, attempt, due, front))


def finish(id, st=0, attempt=1, val=b"\xc0", err=b"", wk=b"host:7/0"):
    p = struct.pack("<QBHQQQ", id, st, attempt, 1700000000000900, 1700000000000300,
                    1700000000000800)
    return record(FINISH, p + s32(val) + s16(err) + s16(wk))


def number(rtype, n):
    return record(rtype, struct.pack("<Q", n))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                            "corpus_journal")
    os.makedirs(out, exist_ok=True)
    cid = bytes(range(16))
    life = (job(1, cid=cid, ref=1, key=b"order-1", pri=5) + dispatch(1, 1) +
            requeue(1, 1, due=1700000001000000, front=0) + dispatch(1, 2) + finish(1, attempt=2))
    seeds = {
        "job": job(7, cid=cid, ref=3, key=b"k", pri=-128, flags=3, retries=2),
        "job-minimal": job(8, task=b"t", queue=b"q", args=b""),
        "dispatch": dispatch(7, 1),
        "requeue": requeue(7, 0),
        "finish-ok": finish(7),
        "finish-error": finish(9, st=1, val=b"", err=b"boom: it failed"),
        "cancel": number(CANCEL, 7),
        "next-id": number(NEXT_ID, 1 << 40),
        "life-of-a-job": life,
        "segment": header(LOG, 3) + life + job(2) + number(CANCEL, 2),
        "snapshot": (header(SNAPSHOT, 5) + number(NEXT_ID, 100) + job(3) + job(4, due=1700000001000000)
                     + dispatch(4, 1) + job(5) + finish(5) + number(END, 6)),
    }
    bad = bytearray(life)
    bad[len(job(1, cid=cid, ref=1, key=b"order-1", pri=5)) + 14] ^= 0xFF
    seeds["damaged-middle"] = bytes(bad)
    seeds["damaged-torn-tail"] = life[:-7]
    seeds["damaged-header"] = life[:5] + b"\x7f" + life[6:]
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(data))
    print("wrote %d seeds to %s" % (len(seeds), out))


if __name__ == "__main__":
    main()
