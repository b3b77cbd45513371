"""The qjob wire protocol, version 1 (proto/PROTOCOL.md), in pure Python.

A message is one ZeroMQ frame: b"QJ", the version byte, the command byte,
then one msgpack map with str keys.  decode() makes the checks of §2.1 in
the spec's order -- header, version, command, a non-allocating pre-check of
the body, then field types, required fields and limits -- and raises
ProtocolError with the error code a broker would answer.  encode() checks
the same limits before anything is sent, so a message this module builds
is never refused as malformed.

Bodies are plain dicts: msgpack str becomes str, bin becomes bytes.  User
values (job arguments, results) travel as bin holding their own msgpack
encoding: pack_value() / unpack_value() convert them.
"""

import msgpack

MAGIC = b"QJ"
VERSION = 1
HEADER_LEN = 4

# Limits (proto/limits.h; PROTOCOL.md §6).
MAX_MSG = 8 * 1024 * 1024
MAX_TASK_NAME = 128
MAX_QUEUE_NAME = 64
MAX_KEY = 128
MAX_NAME = 128
MAX_ARGS = 1024 * 1024
MAX_VALUE = 1024 * 1024
MAX_ERROR = 4096
MAX_NOTE = 256
MAX_BATCH = 4096
MAX_QUEUES = 64
CID_LEN = 16
MAX_BUCKETS = 64
MAX_DEPTH = 32
MAX_VALUES = 1 << 20

# Commands (§5).
HELLO = 0x01
WELCOME = 0x02
HEARTBEAT = 0x03
BYE = 0x04
ERROR = 0x05
SUBMIT = 0x10
ACCEPTED = 0x11
AWAIT = 0x12
RESULTS = 0x13
STATUS = 0x14
STATUS_REP = 0x15
CANCEL = 0x16
CANCEL_REP = 0x17
PROGRESS = 0x18
STATS = 0x20
STATS_REP = 0x21
DEAD = 0x22
DEAD_REP = 0x23
REQUEUE = 0x24
REQUEUE_REP = 0x25
JOBS = 0x30
CREDIT = 0x31
TOUCH = 0x32

COMMAND_NAMES = {
    HELLO: "hello", WELCOME: "welcome", HEARTBEAT: "heartbeat", BYE: "bye",
    ERROR: "error", SUBMIT: "submit", ACCEPTED: "accepted", AWAIT: "await",
    RESULTS: "results", STATUS: "status", STATUS_REP: "status_rep",
    CANCEL: "cancel", CANCEL_REP: "cancel_rep", PROGRESS: "progress",
    STATS: "stats", STATS_REP: "stats_rep", DEAD: "dead", DEAD_REP: "dead_rep",
    REQUEUE: "requeue", REQUEUE_REP: "requeue_rep", JOBS: "jobs",
    CREDIT: "credit", TOUCH: "touch",
}

ROLE_CLIENT = 0
ROLE_WORKER = 1

# Error codes (§7.1).
E_FRAME = 1
E_VERSION = 2
E_COMMAND = 3
E_BODY = 4
E_TOO_BIG = 5
E_LIMIT = 6
E_HELLO = 7
E_ROLE = 8
E_DENIED = 9
E_QUEUE_FULL = 10
E_UNKNOWN_JOB = 11
E_UNKNOWN_TASK = 12
E_SHUTDOWN = 13
E_INTERNAL = 14

ERROR_NAMES = {
    E_FRAME: "frame", E_VERSION: "version", E_COMMAND: "command", E_BODY: "body",
    E_TOO_BIG: "too_big", E_LIMIT: "limit", E_HELLO: "hello", E_ROLE: "role",
    E_DENIED: "denied", E_QUEUE_FULL: "queue_full", E_UNKNOWN_JOB: "unknown_job",
    E_UNKNOWN_TASK: "unknown_task", E_SHUTDOWN: "shutdown", E_INTERNAL: "internal",
}

# Result status (§7.2), job state (§7.3), cancel outcomes (§7.4).
STATUS_NAMES = ("ok", "error", "timeout", "cancelled", "lost", "unknown")
ST_OK, ST_ERROR, ST_TIMEOUT, ST_CANCELLED, ST_LOST, ST_UNKNOWN = range(6)
STATE_NAMES = ("queued", "delayed", "running", "done", "dead", "unknown")
CANCEL_NAMES = ("removed", "requested", "done", "unknown")
REQUEUE_NAMES = {0: "requeued", 3: "unknown"}


def name_of(table, code):
    """The name of a code in one of the tables above; "?" if it has none."""
    if isinstance(table, dict):
        return table.get(code, "?")
    return table[code] if 0 <= code < len(table) else "?"


class ProtocolError(Exception):
    """A frame or field that breaks the spec: code is an E_* value."""

    def __init__(self, code, text):
        super().__init__("%s: %s" % (name_of(ERROR_NAMES, code), text))
        self.code = code
        self.text = text


# ------------------------------------------------------------ pre-check (§2.1.4)

# Bytes taken by each fixed-size msgpack type after its first byte, by first
# byte; variable-length and container types are handled in precheck().
_FIXED = {0xc0: 0, 0xc2: 0, 0xc3: 0, 0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2,
          0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8,
          0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17}
# str/bin/ext with an explicit length: first byte -> (length bytes, extra).
_VARLEN = {0xc4: (1, 0), 0xc5: (2, 0), 0xc6: (4, 0), 0xd9: (1, 0), 0xda: (2, 0),
           0xdb: (4, 0), 0xc7: (1, 1), 0xc8: (2, 1), 0xc9: (4, 1)}
# array16/32, map16/32: first byte -> bytes of the count.
_COUNTED = {0xdc: 2, 0xdd: 4, 0xde: 2, 0xdf: 4}


def _skip_table():
    """First byte -> bytes that follow it for a scalar or fixstr, or a
    negative kind: -1 fixmap, -2 fixarray, -3 str/bin/ext with a length,
    -4 array/map with a count, -5 never used (0xc1)."""
    t = []
    for b in range(256):
        if b <= 0x7f or b >= 0xe0:
            t.append(0)
        elif b <= 0x8f:
            t.append(-1)
        elif b <= 0x9f:
            t.append(-2)
        elif b <= 0xbf:
            t.append(b & 0x1f)
        elif b in _FIXED:
            t.append(_FIXED[b])
        elif b in _VARLEN:
            t.append(-3)
        elif b in _COUNTED:
            t.append(-4)
        else:
            t.append(-5)
    return t


_SKIP = _skip_table()


def precheck(buf, max_depth=MAX_DEPTH, max_values=MAX_VALUES):
    """Check that buf holds exactly one well-formed msgpack value within the
    limits, without decoding it: every declared length fits in the bytes
    left, and so do all the values declared and not yet read (each costs
    at least one byte); containers nest at most max_depth deep (the
    outermost is depth 1); at most max_values values in all.  Raises
    ProtocolError(E_BODY) naming the offset."""
    n = len(buf)
    pos = 0
    values = 0  # one per loop; each loop takes at least a byte, so at most n
    need = 1    # values declared and not yet read, tree-wide
    ends = []   # each open container: the value of need at which it is complete
    skip = _SKIP
    while need:
        if pos >= n:
            raise ProtocolError(E_BODY, "offset %d: truncated, %d more value(s) expected"
                                % (pos, need))
        values += 1
        need -= 1
        b = buf[pos]
        pos += 1
        s = skip[b]
        if s >= 0:
            pos += s
        else:
            items = -1
            if s == -1:
                items = 2 * (b & 0x0f)
            elif s == -2:
                items = b & 0x0f
            elif s == -3:
                lenlen, extra = _VARLEN[b]
                if pos + lenlen > n:
                    raise ProtocolError(E_BODY, "offset %d: length truncated" % (pos - 1))
                pos += lenlen + extra + int.from_bytes(buf[pos:pos + lenlen], "big")
            elif s == -4:
                lenlen = _COUNTED[b]
                if pos + lenlen > n:
                    raise ProtocolError(E_BODY, "offset %d: count truncated" % (pos - 1))
                items = int.from_bytes(buf[pos:pos + lenlen], "big")
                pos += lenlen
                if b >= 0xde:
                    items *= 2
            else:
                raise ProtocolError(E_BODY, "offset %d: byte 0xc1 is never used in msgpack"
                                    % (pos - 1))
            if items >= 0:
                if len(ends) >= max_depth:
                    raise ProtocolError(E_BODY, "offset %d: nested deeper than %d levels"
                                        % (pos - 1, max_depth))
                if need + items > n - pos:
                    raise ProtocolError(E_BODY, "offset %d: container claims %d values but "
                                        "only %d bytes remain for %d" %
                                        (pos - 1, items, n - pos, need + items))
                if items:
                    ends.append(need)
                    need += items
                    continue
        if pos > n:
            raise ProtocolError(E_BODY, "offset %d: value runs past the end" % (pos - 1))
        while ends and need == ends[-1]:
            ends.pop()
    if values > max_values:
        raise ProtocolError(E_BODY, "more than %d values" % max_values)
    if pos != n:
        raise ProtocolError(E_BODY, "offset %d: %d trailing byte(s) after the value"
                            % (pos, n - pos))


# -------------------------------------------------------------- field schema (§5)

U8, U16, U32, U64 = 0xff, 0xffff, 0xffffffff, (1 << 64) - 1


class _F:
    """One key of a body: how its value is checked (§2, §5, §6).

    kind is one of: "uint" (at most hi: the width of the field), "pri"
    (-128..127), "bool", "str"/"bin" (lo..hi bytes; exact: a length outside
    is malformed rather than over a limit), "maps" (array of lo..hi maps
    of schema sub), "ids", "names" (arrays of lo..hi uints / queue names),
    "acks", "outcomes" (arrays of tuples), "times", "prog" (tuples),
    "badby" (map of error name to count).
    """

    __slots__ = ("kind", "req", "lo", "hi", "sub", "exact")

    def __init__(self, kind, req=False, lo=0, hi=U64, sub=None, exact=False):
        self.kind, self.req, self.lo, self.hi, self.sub, self.exact = kind, req, lo, hi, sub, exact


def _path(what):
    """The printable name of a field: what is a str, or (parent, key or
    index), built as the checks descend and formatted only for an error."""
    parts = []
    while type(what) is tuple:
        what, part = what
        parts.append("[%d]" % part if type(part) is int else "." + part)
    return what + "".join(reversed(parts))


def _bad(what, text):
    raise ProtocolError(E_BODY, "%s %s" % (_path(what), text))


def _uint(v, hi, what):
    if type(v) is not int or v < 0 or v > hi:
        _bad(what, "must be an unsigned integer of at most %d (got %r)" % (hi, v))
    return v


def _bytes(v, kind, lo, hi, exact, what):
    if type(v) is not (str if kind == "str" else bytes):
        _bad(what, "must be a %s (got %s)" % (kind, type(v).__name__))
    size = len(v.encode("utf-8", "surrogateescape")) if kind == "str" else len(v)
    if not lo <= size <= hi:
        raise ProtocolError(E_BODY if exact else E_LIMIT, "%s must be a %s of %d..%d bytes "
                            "(got %d)" % (_path(what), kind, lo, hi, size))


def _array(v, lo, hi, what):
    if type(v) is not list:
        _bad(what, "must be an array (got %s)" % type(v).__name__)
    if not lo <= len(v) <= hi:
        raise ProtocolError(E_LIMIT, "%s must be an array of %d..%d items (got %d)"
                            % (_path(what), lo, hi, len(v)))


def _tuple(v, n, form, what):
    """A tuple item: an array of at least n items (more are ignored)."""
    if type(v) is not list or len(v) < n:
        _bad(what, "must be " + form)


def _check(f, v, what):
    k = f.kind
    if k == "uint":
        if type(v) is not int or v < 0 or v > f.hi:
            _uint(v, f.hi, what)
    elif k in ("str", "bin"):
        _bytes(v, k, f.lo, f.hi, f.exact, what)
    elif k == "pri":
        if type(v) is not int:
            _bad(what, "must be an integer from -128 to 127")
        if not -128 <= v <= 127:
            raise ProtocolError(E_LIMIT, "%s must be an integer from -128 to 127 (got %d)"
                                % (_path(what), v))
    elif k == "bool":
        if type(v) is not bool:
            _bad(what, "must be a bool")
    elif k == "maps":
        _array(v, f.lo, f.hi, what)
        for i, m in enumerate(v):
            check_map(m, f.sub, (what, i))
    elif k == "ids":
        _array(v, f.lo, f.hi, what)
        for i, x in enumerate(v):
            if type(x) is not int or x < 0 or x > U64:
                _uint(x, U64, (what, i))
    elif k == "names":
        _array(v, f.lo, f.hi, what)
        for i, x in enumerate(v):
            _bytes(x, "str", 1, MAX_QUEUE_NAME, False, (what, i))
    elif k == "acks":
        _array(v, f.lo, f.hi, what)
        for i, t in enumerate(v):
            w = (what, i)
            _tuple(t, 2, "[ref, id] or [ref, 0, code, text]", w)
            _uint(t[0], U64, (w, "ref"))
            _uint(t[1], U64, (w, "id"))
            code = _uint(t[2], U16, (w, "code")) if len(t) > 2 else 0
            if len(t) > 3 and t[3] is not None:
                _bytes(t[3], "str", 0, MAX_ERROR, False, (w, "text"))
            if t[1] == 0 and code == 0:
                _bad(w, "has neither an id nor an error code")
    elif k == "outcomes":
        _array(v, f.lo, f.hi, what)
        for i, t in enumerate(v):
            w = (what, i)
            _tuple(t, 2, "[id, outcome]", w)
            _uint(t[0], U64, (w, "id"))
            _uint(t[1], U8, (w, "outcome"))
    elif k == "times":
        _tuple(v, 5, "[submitted, queued, dispatched, started, finished]", what)
        for i in range(5):
            _uint(v[i], U64, (what, i))
    elif k == "prog":
        _tuple(v, 2, "[done, total, note]", what)
        _uint(v[0], U64, (what, "done"))
        _uint(v[1], U64, (what, "total"))
        if len(v) > 2 and v[2] is not None:
            _bytes(v[2], "str", 0, MAX_NOTE, False, (what, "note"))
    elif k == "badby":
        if not isinstance(v, dict):
            _bad(what, "must be a map of error name to count")
        for name, n in v.items():
            if type(name) is not str:
                _bad(what, "keys must be strings")
            _uint(n, U64, (what, name))


class _DupMap(dict):
    """A decoded map in which some key appeared more than once."""

    __slots__ = ("dups",)


def _pairs(pairs):
    """object_pairs_hook: a dict, remembering keys that appeared twice."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen = set()
        d = _DupMap(d)
        d.dups = {k for k, _ in pairs if k in seen or seen.add(k)}
    return d


class _Shape:
    """The keys of one kind of map: key -> _F, and the required ones."""

    __slots__ = ("fields", "req")

    def __init__(self, fields):
        self.fields = fields
        self.req = tuple(k for k, f in fields.items() if f.req)


def check_map(m, shape, what):
    """Check one map against a _Shape, as the reference decoder does: every
    key is a str; a known key appears once; a nil value for an optional
    key means absent; known keys have their type and are within their
    limits; required keys are present.  Unknown keys are ignored (§2)."""
    if not isinstance(m, dict):
        _bad(what, "must be a map (got %s)" % type(m).__name__)
    fields = shape.fields
    for key, v in m.items():
        f = fields.get(key)
        if f is None:
            if type(key) is not str:
                _bad(what, "has a map key that is not a string (%r)" % (key,))
        elif v is not None:
            _check(f, v, (what, key))
    for key in shape.req:
        if m.get(key) is None:
            _bad(what, "lacks the required key %r" % key)
    twice = getattr(m, "dups", None)
    if twice:
        for key in twice:
            if key in fields:
                _bad(what, "has the key %r twice" % key)


_UINT = _F("uint")
_U32 = _F("uint", hi=U32)
_U8 = _F("uint", hi=U8)
_RID = _F("uint", True)
_IDS0 = _F("ids", True, 0, MAX_BATCH)
_ITEMS = _F("outcomes", True, 0, MAX_BATCH)

SUBMIT_JOB = _Shape({
    "ref": _F("uint", True), "task": _F("str", True, 1, MAX_TASK_NAME),
    "args": _F("bin", hi=MAX_ARGS), "q": _F("str", lo=1, hi=MAX_QUEUE_NAME),
    "pri": _F("pri"), "timeout": _U32, "retries": _U32, "backoff": _U32, "at": _UINT,
    "key": _F("str", hi=MAX_KEY), "parent": _UINT, "ts": _UINT,
    "detach": _F("bool"), "progress": _F("bool"),
})
WORKER_JOB = _Shape({
    "id": _F("uint", True), "task": _F("str", True, 1, MAX_TASK_NAME),
    "args": _F("bin", hi=MAX_ARGS), "q": _F("str", True, 1, MAX_QUEUE_NAME),
    "attempt": _F("uint", True, hi=U32), "timeout": _U32, "parent": _UINT, "ts": _UINT,
})
RESULT = {
    "id": _F("uint", True), "ref": _UINT, "st": _F("uint", True, hi=U8),
    "val": _F("bin", hi=MAX_VALUE), "err": _F("str", hi=MAX_ERROR),
    "wk": _F("str", hi=MAX_NAME), "att": _U32, "t": _F("times"),
}
JOB_STATE = _Shape(dict(RESULT, st=_U8, state=_F("uint", True, hi=U8),
                        q=_F("str", lo=1, hi=MAX_QUEUE_NAME),
                        task=_F("str", lo=1, hi=MAX_TASK_NAME), prog=_F("prog")))
RESULT = _Shape(RESULT)
QUEUE_STAT = _Shape(dict({k: _UINT for k in ("depth", "delayed", "running", "workers", "submitted",
                                      "done", "failed", "retried", "dead", "comm_us",
                                      "compute_us", "dispatched", "wait_us", "done_recent",
                                      "rate_secs")},
                  name=_F("str", True, 1, MAX_QUEUE_NAME), wait=_F("ids", hi=MAX_BUCKETS + 1),
                  b_jobs=_F("ids", hi=MAX_BUCKETS), b_comm_us=_F("ids", hi=MAX_BUCKETS),
                  b_compute_us=_F("ids", hi=MAX_BUCKETS)))
WORKER_STAT = _Shape({"name": _F("str", True, 0, MAX_NAME), "slots": _U32, "busy": _U32,
                      "done": _UINT, "idle_ms": _UINT})
_JOB_STATES = _F("maps", True, 0, MAX_BATCH, sub=JOB_STATE)

SHAPES = {k: _Shape(v) for k, v in {
    HELLO: {"role": _F("uint", True, hi=U8), "name": _F("str", hi=MAX_NAME),
            "cid": _F("bin", lo=CID_LEN, hi=CID_LEN, exact=True),
            "queues": _F("names", hi=MAX_QUEUES), "credit": _U32, "hb": _U32,
            "replaces": _F("str", lo=1, hi=MAX_NAME), "timedout": _F("ids", hi=MAX_BATCH)},
    WELCOME: {"hb": _F("uint", True, hi=U32), "live": _F("uint", True, hi=U32),
              "maxmsg": _F("uint", True, hi=U32), "name": _F("str", hi=MAX_NAME)},
    HEARTBEAT: {},
    BYE: {"drain": _F("bool")},
    ERROR: {"code": _F("uint", True, hi=U16), "text": _F("str", True, hi=MAX_ERROR),
            "about": _U8, "rid": _UINT},
    SUBMIT: {"jobs": _F("maps", True, 1, MAX_BATCH, sub=SUBMIT_JOB)},
    ACCEPTED: {"acks": _F("acks", True, 0, MAX_BATCH)},
    AWAIT: {"ids": _F("ids", True, 1, MAX_BATCH)},
    RESULTS: {"results": _F("maps", True, 0, MAX_BATCH, sub=RESULT), "credit": _U32},
    PROGRESS: {"id": _F("uint", True), "done": _F("uint", True), "total": _F("uint", True),
               "note": _F("str", hi=MAX_NOTE)},
    JOBS: {"jobs": _F("maps", True, 0, MAX_BATCH, sub=WORKER_JOB)},
    CREDIT: {"credit": _F("uint", True, hi=U32)},
    TOUCH: {"ids": _IDS0},
    STATUS: {"rid": _RID, "ids": _IDS0},
    STATUS_REP: {"rid": _RID, "jobs": _JOB_STATES},
    CANCEL: {"rid": _UINT, "ids": _IDS0},
    CANCEL_REP: {"rid": _RID, "items": _ITEMS},
    STATS: {"rid": _RID},
    STATS_REP: dict({k: _UINT for k in ("uptime", "clients", "workers", "submitted", "done",
                                        "failed", "retried", "lost", "cancelled", "bad",
                                        "rejected", "kept", "rss", "slots", "busy",
                                        "dispatched", "jbytes", "jdisk", "fsyncs", "fsync_us")},
                    rid=_RID, bad_by=_F("badby"), wait_le=_F("ids", hi=MAX_BUCKETS),
                    queues=_F("maps", lo=0, hi=MAX_BATCH, sub=QUEUE_STAT),
                    wlist=_F("maps", lo=0, hi=MAX_BATCH, sub=WORKER_STAT)),
    DEAD: {"rid": _RID, "q": _F("str", lo=1, hi=MAX_QUEUE_NAME), "limit": _U32},
    DEAD_REP: {"rid": _RID, "jobs": _JOB_STATES},
    REQUEUE: {"rid": _RID, "ids": _IDS0},
    REQUEUE_REP: {"rid": _RID, "items": _ITEMS},
}.items()}


def check_body(cmd, body):
    """Step 5 of §2.1 for one command: field types and required fields
    (E_BODY), limits (E_LIMIT), and the rules across fields."""
    what = name_of(COMMAND_NAMES, cmd)
    check_map(body, SHAPES[cmd], what)
    if cmd == HELLO:
        if body["role"] > ROLE_WORKER:
            _bad((what, "role"), "must be 0 (client) or 1 (worker)")
        if body["role"] == ROLE_CLIENT and body.get("cid") is None:
            _bad((what, "cid"), "is required for a client")


# ------------------------------------------------------------------- frames (§2)

def decode(frame):
    """Decode one frame into (cmd, body).  Raises ProtocolError with the
    code of the first check that fails, in the order of §2.1.  Strings are
    not checked for UTF-8 (nor are they by the C programs): bytes that are
    not UTF-8 come through as surrogates."""
    frame = bytes(frame)
    if len(frame) < HEADER_LEN or frame[:2] != MAGIC:
        raise ProtocolError(E_FRAME, "not a qjob frame (%d bytes, needs 'QJ' and a 4-byte "
                            "header)" % len(frame))
    if frame[2] != VERSION:
        raise ProtocolError(E_VERSION, "protocol version %d not supported (this is version %d)"
                            % (frame[2], VERSION))
    cmd = frame[3]
    if cmd not in COMMAND_NAMES:
        raise ProtocolError(E_COMMAND, "unknown command 0x%02x" % cmd)
    body = frame[HEADER_LEN:]
    precheck(body)
    try:
        body = msgpack.unpackb(body, raw=False, strict_map_key=False, use_list=True,
                               object_pairs_hook=_pairs, unicode_errors="surrogateescape")
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise ProtocolError(E_BODY, "body: msgpack decoder refused it (%s)" % e) from None
    check_body(cmd, body)
    return cmd, body


def encode(cmd, body):
    """Encode one message after the checks decode() would make, so that a
    broker never refuses it as malformed.  Raises ProtocolError: a value
    the caller passed is out of bounds."""
    check_body(cmd, body)
    frame = MAGIC + bytes((VERSION, cmd)) + _pack(body)
    if len(frame) > MAX_MSG:
        raise ProtocolError(E_TOO_BIG, "%s message of %d bytes is over %d"
                            % (name_of(COMMAND_NAMES, cmd), len(frame), MAX_MSG))
    return frame


def _pack(obj):
    return msgpack.packb(obj, use_bin_type=True, unicode_errors="surrogateescape")


def pack_job(job):
    """Check one SUBMIT job map and return its msgpack bytes: a sender keeps
    them to build SUBMIT frames (submit_frame) and to resend them."""
    check_map(job, SUBMIT_JOB, "job")
    return _pack(job)


# Bytes a SUBMIT frame takes besides its jobs: header, {"jobs": array32}.
SUBMIT_OVERHEAD = HEADER_LEN + 11


def submit_frame(packed_jobs):
    """A SUBMIT frame from job maps packed one by one (pack_job).  The
    array header is an array32 whatever the count: non-minimal encodings
    are valid (§2)."""
    n = len(packed_jobs)
    if not 1 <= n <= MAX_BATCH:
        raise ProtocolError(E_LIMIT, "a submit carries 1..%d jobs, not %d" % (MAX_BATCH, n))
    return b"".join([MAGIC, bytes((VERSION, SUBMIT)), b"\x81\xa4jobs\xdd",
                     n.to_bytes(4, "big")] + list(packed_jobs))


# ------------------------------------------------------------ user values (§2)

def pack_value(value, limit=MAX_ARGS, what="args"):
    """Encode a job argument or result value; ValueError if it cannot be
    encoded or is over its limit."""
    try:
        b = _pack(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError("%s cannot be encoded as msgpack: %s" % (what, e)) from None
    if len(b) > limit:
        raise ValueError("%s encode to %d bytes, over the limit of %d" % (what, len(b), limit))
    return b


def unpack_value(b):
    """Decode a value carried in args/val after the same pre-check as a
    frame.  str that are not UTF-8 keep their bytes as surrogates, so no
    value a C task returns is refused.  Raises ProtocolError(E_BODY)."""
    if b is None:
        return None
    precheck(b)
    try:
        return msgpack.unpackb(b, raw=False, strict_map_key=False, use_list=True,
                               unicode_errors="surrogateescape")
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise ProtocolError(E_BODY, "value does not decode: %s" % e) from None
