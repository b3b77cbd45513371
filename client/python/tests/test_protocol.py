"""The frame codec (qjob.protocol) against PROTOCOL.md §2, §5, §6: no server."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import msgpack  # noqa: E402

from qjob import protocol as P  # noqa: E402

CID = bytes(range(16))


def frame(cmd, body_bytes, version=1):
    return b"QJ" + bytes((version, cmd)) + body_bytes


def raw(cmd, body):
    """A frame whose body is packed as given, without the encoder's checks."""
    return frame(cmd, msgpack.packb(body, use_bin_type=True))


class Examples(unittest.TestCase):
    """Every command survives encode -> decode unchanged."""

    BODIES = {
        P.HELLO: {"role": 0, "cid": CID, "name": "host:42", "hb": 500},
        P.WELCOME: {"hb": 1000, "live": 3, "maxmsg": P.MAX_MSG, "name": "b"},
        P.HEARTBEAT: {},
        P.BYE: {"drain": True},
        P.ERROR: {"code": P.E_HELLO, "text": "say hello first", "about": P.SUBMIT, "rid": 9},
        P.SUBMIT: {"jobs": [{"ref": 1, "task": "echo", "args": b"\x81\xa1x\x01", "q": "a",
                             "pri": -5, "timeout": 100, "retries": 2, "backoff": 10,
                             "at": 1, "key": "k", "parent": 7, "ts": 123,
                             "detach": True, "progress": False}]},
        P.ACCEPTED: {"acks": [[1, 1234567], [2, 0, P.E_QUEUE_FULL, "queue full"]]},
        P.AWAIT: {"ids": [1, 2, 3]},
        P.RESULTS: {"results": [{"id": 5, "ref": 1, "st": 0, "val": b"\x01", "wk": "w",
                                 "att": 1, "t": [1, 2, 3, 4, 5]}], "credit": 1},
        P.PROGRESS: {"id": 5, "done": 1, "total": 10, "note": "one"},
        P.JOBS: {"jobs": [{"id": 5, "task": "echo", "q": "default", "attempt": 1}]},
        P.CREDIT: {"credit": 4},
        P.TOUCH: {"ids": [5]},
        P.STATUS: {"rid": 1, "ids": [5]},
        P.STATUS_REP: {"rid": 1, "jobs": [{"id": 5, "state": 2, "q": "default",
                                           "task": "sleep", "prog": [1, 2, "x"]}]},
        P.CANCEL: {"rid": 2, "ids": [5]},
        P.CANCEL_REP: {"rid": 2, "items": [[5, 0]]},
        P.STATS: {"rid": 3},
        P.STATS_REP: {"rid": 3, "uptime": 10, "bad": 1, "bad_by": {"body": 1},
                      "queues": [{"name": "default", "depth": 0}],
                      "wlist": [{"name": "w", "slots": 2, "busy": 0}]},
        P.DEAD: {"rid": 4, "q": "default", "limit": 10},
        P.DEAD_REP: {"rid": 4, "jobs": [{"id": 6, "state": 4, "st": 1, "err": "boom"}]},
        P.REQUEUE: {"rid": 5, "ids": [6]},
        P.REQUEUE_REP: {"rid": 5, "items": [[6, 0], [7, 3]]},
    }

    def test_every_command_round_trips(self):
        self.assertEqual(set(self.BODIES), set(P.COMMAND_NAMES))
        for cmd, body in self.BODIES.items():
            f = P.encode(cmd, body)
            self.assertEqual(f[:4], bytes((0x51, 0x4A, 1, cmd)))
            self.assertEqual(P.decode(f), (cmd, body), P.COMMAND_NAMES[cmd])

    def test_spec_example_header_bytes(self):
        f = P.encode(P.HEARTBEAT, {})
        self.assertEqual(f, bytes.fromhex("514a010380"))

    def test_submit_frame_is_a_valid_submit(self):
        jobs = [{"ref": i, "task": "echo", "args": P.pack_value({"n": i})} for i in (1, 2)]
        cmd, body = P.decode(P.submit_frame([P.pack_job(j) for j in jobs]))
        self.assertEqual((cmd, body), (P.SUBMIT, {"jobs": jobs}))

    def test_unknown_keys_are_ignored_and_nil_means_absent(self):
        cmd, body = P.decode(raw(P.WELCOME, {"hb": 1, "live": 2, "maxmsg": 3, "new": [1],
                                             "name": None}))
        self.assertEqual(body["hb"], 1)
        P.decode(raw(P.RESULTS, {"results": [{"id": 1, "st": 0, "val": None, "t": None}]}))

    def test_non_utf8_strings_pass_as_the_c_programs_let_them(self):
        body = msgpack.packb({"code": 4, "text": "x"}).replace(b"\xa1x", b"\xa1\xff")
        cmd, got = P.decode(frame(P.ERROR, body))
        self.assertEqual(got["text"].encode("utf-8", "surrogateescape"), b"\xff")

    def test_tuples_may_carry_more_items(self):
        P.decode(raw(P.ACCEPTED, {"acks": [[1, 2, 0, None, "extra"]]}))
        P.decode(raw(P.RESULTS, {"results": [{"id": 1, "st": 0, "t": [1, 2, 3, 4, 5, 6]}]}))


class Refusals(unittest.TestCase):
    """Each check of §2.1, in order, with the code a broker would answer."""

    def code(self, f):
        with self.assertRaises(P.ProtocolError) as cm:
            P.decode(f)
        return cm.exception.code

    def test_header(self):
        self.assertEqual(self.code(b"QJ\x01"), P.E_FRAME)
        self.assertEqual(self.code(b"XJ\x01\x03\x80"), P.E_FRAME)
        self.assertEqual(self.code(b"QJ\x02\x03\x80"), P.E_VERSION)
        self.assertEqual(self.code(b"QJ\x01\x7f\x80"), P.E_COMMAND)
        # the order: a bad version is reported before an unknown command
        self.assertEqual(self.code(b"QJ\x09\x7f"), P.E_VERSION)

    def test_precheck(self):
        self.assertEqual(self.code(frame(P.HEARTBEAT, b"")), P.E_BODY)
        self.assertEqual(self.code(frame(P.HEARTBEAT, b"\x80\x80")), P.E_BODY)  # trailing
        self.assertEqual(self.code(frame(P.HEARTBEAT, b"\xc1")), P.E_BODY)      # never used
        self.assertEqual(self.code(frame(P.HEARTBEAT, b"\x81\xa4ab")), P.E_BODY)  # short str
        # an array32 claiming 2^32-1 items in 5 bytes is refused before decoding
        hostile = b"\x81\xa3ids\xdd\xff\xff\xff\xff"
        self.assertEqual(self.code(frame(P.AWAIT, hostile)), P.E_BODY)
        # a map whose declared values cannot all fit in the bytes left
        self.assertEqual(self.code(frame(P.HEARTBEAT, b"\xde\x00\x03\x01\x01\x01\x01")),
                         P.E_BODY)
        with self.assertRaises(P.ProtocolError):
            P.precheck(b"\xc4\x05abc")  # bin shorter than its length

    def test_depth_and_value_count(self):
        def nested(depth):
            return b"\x81\xa1k" + b"\x91" * (depth - 2) + b"\x90"
        P.precheck(nested(32))
        P.decode(frame(P.HEARTBEAT, nested(32)))
        self.assertEqual(self.code(frame(P.HEARTBEAT, nested(33))), P.E_BODY)
        P.precheck(b"\x93\x01\x02\x03", max_values=4)
        with self.assertRaises(P.ProtocolError):
            P.precheck(b"\x93\x01\x02\x03", max_values=3)
        many = b"\x81\xa1k\xdd" + (1 << 20).to_bytes(4, "big") + b"\xc0" * (1 << 20)
        self.assertEqual(self.code(frame(P.HEARTBEAT, many)), P.E_BODY)

    def test_types_are_body_errors(self):
        cases = [
            (P.AWAIT, {"ids": ["1"]}),
            (P.AWAIT, {"ids": [-1]}),
            (P.AWAIT, {"ids": 5}),
            (P.BYE, {"drain": 1}),
            (P.WELCOME, {"hb": 1, "live": 2}),                      # maxmsg missing
            (P.WELCOME, {"hb": 1.5, "live": 2, "maxmsg": 3}),
            (P.WELCOME, {"hb": 1 << 32, "live": 2, "maxmsg": 3}),   # over uint32
            (P.RESULTS, {"results": [{"id": 1, "st": 256}]}),       # over uint8
            (P.RESULTS, {"results": [{"id": 1, "st": 0, "t": [1, 2, 3, 4]}]}),
            (P.RESULTS, {"results": [{"id": 1, "st": 0, "val": "str, not bin"}]}),
            (P.HELLO, {"role": 0}),                                  # client without cid
            (P.HELLO, {"role": 2, "cid": CID}),
            (P.HELLO, {"role": 0, "cid": CID[:15]}),                 # cid is exactly 16
            (P.ACCEPTED, {"acks": [[1, 0]]}),                        # neither id nor code
            (P.ACCEPTED, {"acks": [[1]]}),
            (P.SUBMIT, {"jobs": [{"ref": 1, "task": "t", "pri": "high"}]}),
            (P.STATS_REP, {"rid": 1, "bad_by": {"body": "x"}}),
            (P.ERROR, {"code": 1}),
        ]
        for cmd, body in cases:
            self.assertEqual(self.code(raw(cmd, body)), P.E_BODY, body)

    def test_keys(self):
        self.assertEqual(self.code(raw(P.HEARTBEAT, {1: 2})), P.E_BODY)
        twice = b"\x82\xa6credit\x01\xa6credit\x02"
        self.assertEqual(self.code(frame(P.CREDIT, twice)), P.E_BODY)
        P.decode(frame(P.CREDIT, b"\x83\xa6credit\x01\xa1z\x01\xa1z\x02"))  # unknown twice

    def test_limits(self):
        cases = [
            (P.SUBMIT, {"jobs": []}),
            (P.SUBMIT, {"jobs": [{"ref": 1, "task": ""}]}),
            (P.SUBMIT, {"jobs": [{"ref": 1, "task": "t" * 129}]}),
            (P.SUBMIT, {"jobs": [{"ref": 1, "task": "t", "q": "q" * 65}]}),
            (P.SUBMIT, {"jobs": [{"ref": 1, "task": "t", "key": "k" * 129}]}),
            (P.SUBMIT, {"jobs": [{"ref": 1, "task": "t", "args": b"x" * (P.MAX_ARGS + 1)}]}),
            (P.SUBMIT, {"jobs": [{"ref": 1, "task": "t", "pri": 128}]}),
            (P.AWAIT, {"ids": []}),
            (P.AWAIT, {"ids": [1] * 4097}),
            (P.HELLO, {"role": 1, "queues": ["q"] * 65}),
            (P.HELLO, {"role": 1, "name": "n" * 129}),
            (P.PROGRESS, {"id": 1, "done": 1, "total": 2, "note": "n" * 257}),
            (P.RESULTS, {"results": [{"id": 1, "st": 1, "err": "e" * 4097}]}),
            (P.ERROR, {"code": 1, "text": "e" * 4097}),
        ]
        for cmd, body in cases:
            self.assertEqual(self.code(raw(cmd, body)), P.E_LIMIT, str(body)[:80])
        P.decode(raw(P.AWAIT, {"ids": [1] * 4096}))
        P.decode(raw(P.SUBMIT, {"jobs": [{"ref": 1, "task": "t" * 128, "pri": -128}]}))

    def test_encoder_refuses_what_a_broker_would(self):
        with self.assertRaises(P.ProtocolError) as cm:
            P.encode(P.AWAIT, {"ids": []})
        self.assertEqual(cm.exception.code, P.E_LIMIT)
        with self.assertRaises(P.ProtocolError):
            P.pack_job({"ref": 1, "task": "t" * 200})
        with self.assertRaises(P.ProtocolError):
            P.submit_frame([])


class Values(unittest.TestCase):
    def test_round_trip(self):
        for v in (None, 1, -1, 2 ** 64 - 1, 1.5, "π", b"\x00", [1, [2]], {"a": {1: 2}}):
            self.assertEqual(P.unpack_value(P.pack_value(v)), v)

    def test_limits(self):
        P.pack_value("x" * (P.MAX_ARGS - 5))
        with self.assertRaises(ValueError):
            P.pack_value("x" * P.MAX_ARGS)
        with self.assertRaises(ValueError):
            P.pack_value(object())
        with self.assertRaises(P.ProtocolError):
            P.unpack_value(b"\xdd\xff\xff\xff\xff")
        with self.assertRaises(P.ProtocolError):
            P.unpack_value(b"\x91" * 40 + b"\x90")


if __name__ == "__main__":
    unittest.main(verbosity=2)
