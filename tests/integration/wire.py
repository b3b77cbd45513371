"""The qjob wire protocol (proto/PROTOCOL.md) in Python, for tests.

A frame is b"QJ" + version + command code + one msgpack map.  encode() and
decode() turn (command, body dict) into a frame and back; the helpers below
build every command of PROTOCOL.md §5 with the keys the spec names, so a
test reads like the conversation it drives:

    sock = connect(endpoint)
    welcome = hello(sock, CLIENT)                     # -> WELCOME body
    sock.send(submit([job(1, "echo", args=pack({"x": 1}))]))
    cmd, body = recv(sock)                            # ACCEPTED
    rep = request(sock, STATS)                        # -> STATS_REP body

Bodies are plain dicts: str keys, bin values as bytes.  Job arguments and
results are msgpack values carried as bin: pack() / unpack() them.

This module is independent of the C codec on purpose: it is a second
implementation written from the spec, so tests that use it check the C
programs against the text, not against themselves.
"""
import itertools
import os
import time

import msgpack
import zmq

VERSION = 1
MAGIC = b"QJ"
MAX_MSG = 8 * 1024 * 1024
CID_LEN = 16

# Commands (§5).
HELLO, WELCOME, HEARTBEAT, BYE, ERROR = 0x01, 0x02, 0x03, 0x04, 0x05
SUBMIT, ACCEPTED, AWAIT, RESULTS = 0x10, 0x11, 0x12, 0x13
STATUS, STATUS_REP, CANCEL, CANCEL_REP, PROGRESS = 0x14, 0x15, 0x16, 0x17, 0x18
STATS, STATS_REP, DEAD, DEAD_REP, REQUEUE, REQUEUE_REP = 0x20, 0x21, 0x22, 0x23, 0x24, 0x25
JOBS, CREDIT, TOUCH = 0x30, 0x31, 0x32

COMMANDS = {
    HELLO: "hello", WELCOME: "welcome", HEARTBEAT: "heartbeat", BYE: "bye", ERROR: "error",
    SUBMIT: "submit", ACCEPTED: "accepted", AWAIT: "await", RESULTS: "results",
    STATUS: "status", STATUS_REP: "status_rep", CANCEL: "cancel", CANCEL_REP: "cancel_rep",
    PROGRESS: "progress", STATS: "stats", STATS_REP: "stats_rep", DEAD: "dead",
    DEAD_REP: "dead_rep", REQUEUE: "requeue", REQUEUE_REP: "requeue_rep", JOBS: "jobs",
    CREDIT: "credit", TOUCH: "touch",
}

# The reply to each request command.
REPLIES = {STATUS: STATUS_REP, CANCEL: CANCEL_REP, STATS: STATS_REP, DEAD: DEAD_REP,
           REQUEUE: REQUEUE_REP}

# Roles (HELLO.role).
CLIENT, WORKER = 0, 1

# Error codes (§7.1).
E_FRAME, E_VERSION, E_COMMAND, E_BODY, E_TOO_BIG, E_LIMIT, E_HELLO = 1, 2, 3, 4, 5, 6, 7
E_ROLE, E_DENIED, E_QUEUE_FULL, E_UNKNOWN_JOB, E_UNKNOWN_TASK = 8, 9, 10, 11, 12
E_SHUTDOWN, E_INTERNAL = 13, 14
ERRORS = {1: "frame", 2: "version", 3: "command", 4: "body", 5: "too_big", 6: "limit",
          7: "hello", 8: "role", 9: "denied", 10: "queue_full", 11: "unknown_job",
          12: "unknown_task", 13: "shutdown", 14: "internal"}

# Result status (§7.2), job state (§7.3), cancel outcomes (§7.4).
ST_OK, ST_ERROR, ST_TIMEOUT, ST_CANCELLED, ST_LOST, ST_UNKNOWN = 0, 1, 2, 3, 4, 5
STATE_QUEUED, STATE_DELAYED, STATE_RUNNING, STATE_DONE, STATE_DEAD, STATE_UNKNOWN = range(6)
CANCEL_REMOVED, CANCEL_REQUESTED, CANCEL_DONE, CANCEL_UNKNOWN = 0, 1, 2, 3


class ProtocolError(Exception):
    """A frame that is not a valid qjob message, or an unexpected reply."""


class Refused(Exception):
    """The broker answered ERROR; .code and .text say why."""

    def __init__(self, body):
        self.body = body
        self.code = body.get("code")
        self.text = body.get("text", "")
        super().__init__("ERROR %s (%s): %s" % (self.code, ERRORS.get(self.code, "?"),
                                                 self.text))


# ---- frames

def encode(cmd, body=None, version=VERSION):
    """One frame: header + the msgpack map body (None = empty map)."""
    return MAGIC + bytes([version, cmd]) + msgpack.packb(body or {}, use_bin_type=True)


def decode(frame):
    """(cmd, body) of a frame; raises ProtocolError if it is not one."""
    if len(frame) < 4 or frame[:2] != MAGIC:
        raise ProtocolError("not a qjob frame (%d bytes)" % len(frame))
    if frame[2] != VERSION:
        raise ProtocolError("protocol version %d" % frame[2])
    try:
        body = msgpack.unpackb(frame[4:], raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several kinds
        raise ProtocolError("body: %s" % e)
    if not isinstance(body, dict):
        raise ProtocolError("body is not a map")
    return frame[3], body


def pack(value):
    """A user value (job args, result) as the bytes carried in a bin."""
    return msgpack.packb(value, use_bin_type=True)


def unpack(data):
    """The value held in an args/val bin (None when absent)."""
    if data is None:
        return None
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def new_cid():
    return os.urandom(CID_LEN)


def _body(**fields):
    """A body without the fields left as None (absent)."""
    return {k: v for k, v in fields.items() if v is not None}


# ---- builders: one per command (§5), returning frames

def hello_frame(role, cid=None, name=None, queues=None, credit=None, hb=None):
    return encode(HELLO, _body(role=role, cid=cid, name=name, queues=queues, credit=credit,
                               hb=hb))


def welcome(hb, live, maxmsg=MAX_MSG, name=None):
    return encode(WELCOME, _body(hb=hb, live=live, maxmsg=maxmsg, name=name))


def heartbeat():
    return encode(HEARTBEAT)


def bye(drain=None):
    return encode(BYE, _body(drain=drain))


def error(code, text, about=None, rid=None):
    return encode(ERROR, _body(code=code, text=text, about=about, rid=rid))


def job(ref, task, args=None, q=None, pri=None, timeout=None, retries=None, backoff=None,
        at=None, key=None, parent=None, ts=None, detach=None, progress=None):
    """A SUBMIT job map.  args is bytes (use pack())."""
    return _body(ref=ref, task=task, args=args, q=q, pri=pri, timeout=timeout,
                 retries=retries, backoff=backoff, at=at, key=key, parent=parent, ts=ts,
                 detach=detach, progress=progress)


def submit(jobs):
    return encode(SUBMIT, {"jobs": list(jobs)})


def accepted(acks):
    return encode(ACCEPTED, {"acks": list(acks)})


def await_(ids):
    return encode(AWAIT, {"ids": list(ids)})


def result(id, st, val=None, err=None, wk=None, att=None, t=None, ref=None):
    """A RESULTS result map.  val is bytes (use pack())."""
    return _body(id=id, ref=ref, st=st, val=val, err=err, wk=wk, att=att, t=t)


def results(items, credit=None):
    return encode(RESULTS, _body(results=list(items), credit=credit))


def status(rid, ids):
    return encode(STATUS, {"rid": rid, "ids": list(ids)})


def cancel(ids, rid=None):
    return encode(CANCEL, _body(rid=rid, ids=list(ids)))


def progress(id, done, total, note=None):
    return encode(PROGRESS, _body(id=id, done=done, total=total, note=note))


def stats(rid):
    return encode(STATS, {"rid": rid})


def dead(rid, q=None, limit=None):
    return encode(DEAD, _body(rid=rid, q=q, limit=limit))


def requeue(rid, ids):
    return encode(REQUEUE, {"rid": rid, "ids": list(ids)})


def jobs(items):
    return encode(JOBS, {"jobs": list(items)})


def credit(n):
    return encode(CREDIT, {"credit": n})


def touch(ids):
    return encode(TOUCH, {"ids": list(ids)})


# ---- sockets

def key_file(path):
    """The Z85 keys of a key file (PROTOCOL.md §1.1) as {"public": bytes,
    "secret": bytes or None}."""
    keys = {"public": None, "secret": None}
    with open(path) as f:
        for line in f:
            name, _, value = line.partition("=")
            name = name.strip()
            if name in ("public-key", "secret-key"):
                keys[name[:6]] = value.strip().strip('"').encode()
    return keys


def connect(endpoint, ctx=None, linger=0, curve=None):
    """A DEALER connected to endpoint, with the limits every qjob socket sets.
    curve: (our secret key file, the broker's public key file) for CURVE."""
    ctx = ctx or zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, linger)
    s.setsockopt(zmq.MAXMSGSIZE, MAX_MSG)
    if curve:
        mine = key_file(curve[0])
        s.curve_secretkey = mine["secret"]
        s.curve_publickey = mine["public"]
        s.curve_serverkey = key_file(curve[1])["public"]
    s.connect(endpoint)
    return s


def recv(sock, timeout=5.0):
    """Next message as (cmd, body); None after timeout seconds."""
    if not sock.poll(int(timeout * 1000)):
        return None
    return decode(sock.recv())


def expect(sock, want, timeout=5.0, skip=(HEARTBEAT,), backlog=None):
    """Wait for a message of command want (or a tuple of them); return its body.
    Commands in skip are dropped; others are appended to backlog if given,
    else raise ProtocolError.  An ERROR that is not wanted raises Refused."""
    wants = want if isinstance(want, tuple) else (want,)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        got = recv(sock, max(left, 0)) if left > 0 else None
        if got is None:
            raise TimeoutError("no %s within %.1fs" % (
                "/".join(COMMANDS.get(w, hex(w)) for w in wants), timeout))
        cmd, body = got
        if cmd in wants:
            return body if isinstance(want, int) else (cmd, body)
        if cmd in skip:
            continue
        if cmd == ERROR:
            raise Refused(body)
        if backlog is None:
            raise ProtocolError("expected %s, got %s %r" % (
                "/".join(COMMANDS.get(w, hex(w)) for w in wants), COMMANDS.get(cmd, cmd), body))
        backlog.append((cmd, body))


def hello(sock, role, cid=None, name=None, queues=None, credit=None, hb=None, timeout=5.0):
    """Say HELLO (a client gets a random cid unless given one) and return
    the WELCOME body; raises Refused on ERROR, TimeoutError on silence."""
    if role == CLIENT and cid is None:
        cid = new_cid()
    sock.send(hello_frame(role, cid=cid, name=name, queues=queues, credit=credit, hb=hb))
    return expect(sock, WELCOME, timeout)


_rids = itertools.count(1)


def request(sock, cmd, timeout=5.0, backlog=None, **fields):
    """Send a request (STATUS, CANCEL, STATS, DEAD, REQUEUE) with a fresh rid
    and return the body of its reply.  Other messages that arrive first go
    to backlog (a list) if given, else are dropped.  ERROR for this rid
    raises Refused."""
    rid = fields.pop("rid", None) or next(_rids)
    sock.send(encode(cmd, dict(fields, rid=rid)))
    want = REPLIES[cmd]
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        got = recv(sock, left) if left > 0 else None
        if got is None:
            raise TimeoutError("no reply to %s (rid %d) within %.1fs" % (
                COMMANDS[cmd], rid, timeout))
        rcmd, body = got
        if body.get("rid") == rid and rcmd in (want, ERROR):
            if rcmd == ERROR:
                raise Refused(body)
            return body
        if backlog is not None and rcmd != HEARTBEAT:
            backlog.append((rcmd, body))


def stats_once(endpoint, timeout=2.0, ctx=None, curve=None):
    """STATS_REP figures of the broker at endpoint, from a short-lived client
    connection (HELLO + STATS, over CURVE with curve's key files, as for
    connect); None if it does not answer in time."""
    s = connect(endpoint, ctx, curve=curve)
    try:
        hello(s, CLIENT, name="wire-stats", timeout=timeout)
        rep = request(s, STATS, timeout=timeout)
        rep.pop("rid", None)
        s.send(bye())
        return rep
    except (TimeoutError, Refused, ProtocolError):
        return None
    finally:
        s.close(0)
