"""Job handles and what the broker says about jobs: Result, Times,
Progress, JobStatus.

A Job is awaitable: `value = await job` gives the job's value or raises
the JobError subclass that matches its status.  Waiting never cancels the
job itself: a wait that is cancelled or times out (asyncio.wait_for, the
timeout= arguments) leaves the job running, and it can be awaited again.
"""

import asyncio
import time
from collections import namedtuple

from . import protocol as P
from .errors import EXCEPTIONS, JobError

Times = namedtuple("Times", "submitted queued dispatched started finished delivered")
Times.__doc__ = """A job's life in unix microseconds, 0 = not known: submitted (the
client made the submit), queued (the broker accepted it), dispatched (sent to
a worker), started and finished (on the worker), delivered (the result reached
this client)."""

Progress = namedtuple("Progress", "done total note")
Progress.__doc__ = "A progress report from a running job: done out of total, and a note."


class Result:
    """The final outcome of a job.

    status: "ok", "error", "timeout", "cancelled", "lost", "unknown" (no
    such job), or "refused" (the broker refused the submit; code names the
    reason).  value: the task's result (None unless ok).  error: the
    message (None if ok).  attempts, worker: as reported.  times: Times.
    """

    __slots__ = ("id", "status", "value", "error", "attempts", "worker", "times", "code")

    def __init__(self, id, status, value=None, error=None, attempts=0, worker=None,
                 times=None, code=None):
        self.id = id
        self.status = status
        self.value = value
        self.error = error
        self.attempts = attempts
        self.worker = worker
        self.times = times or Times(0, 0, 0, 0, 0, 0)
        self.code = code

    @classmethod
    def from_wire(cls, r, delivered=0):
        """A Result from a decoded result map (RESULTS, STATUS_REP, DEAD_REP)."""
        t = r.get("t") or (0, 0, 0, 0, 0)
        status = P.name_of(P.STATUS_NAMES, r.get("st", P.ST_UNKNOWN))
        error = r.get("err")
        value = None
        try:
            value = P.unpack_value(r.get("val"))
        except P.ProtocolError as e:
            status, error = "error", "its value does not decode: %s" % e.text
        return cls(r["id"], status, value, error, r.get("att", 0), r.get("wk"),
                   Times(t[0], t[1], t[2], t[3], t[4], delivered))

    @property
    def ok(self):
        return self.status == "ok"

    def unwrap(self):
        """The value if the job succeeded; else raise the matching JobError."""
        if self.status == "ok":
            return self.value
        raise EXCEPTIONS.get(self.status, JobError)(self)

    def __repr__(self):
        if self.ok:
            return "<Result %s ok %r>" % (self.id, self.value)
        return "<Result %s %s %r>" % (self.id, self.status, self.error)


class JobStatus:
    """Where a job is (STATUS, DEAD): state is "queued", "delayed",
    "running", "done", "dead" or "unknown"; queue and task as submitted;
    progress the latest Progress or None; result a Result once it is done."""

    __slots__ = ("id", "state", "queue", "task", "progress", "result")

    def __init__(self, r):
        self.id = r["id"]
        self.state = P.name_of(P.STATE_NAMES, r["state"])
        self.queue = r.get("q")
        self.task = r.get("task")
        prog = r.get("prog")
        self.progress = Progress(prog[0], prog[1], prog[2] if len(prog) > 2 else None) \
            if prog else None
        self.result = Result.from_wire(r) if r.get("st") is not None else None

    def __repr__(self):
        return "<JobStatus %s %s>" % (self.id, self.state)


def now_us():
    return time.time_ns() // 1000


async def _wait(fut, timeout):
    """The result of fut, waiting at most timeout seconds (None: no bound);
    a cancelled or timed-out wait leaves fut alone."""
    if fut.done():
        return fut.result()
    if timeout is None:
        return await asyncio.shield(fut)
    return await asyncio.wait_for(asyncio.shield(fut), timeout)


class Job:
    """A handle on one job, from Client.submit*, Client.attach.

    id is the broker's job id (None until the submit is accepted); task the
    task name (None for an attached job); progress the latest Progress.
    """

    def __init__(self, client, task=None, id=None, on_progress=None):
        self._client = client
        self.task = task
        self.id = id
        self.ref = None
        self.progress = None
        self._on_progress = on_progress
        self._accepted = client._loop.create_future()   # -> id
        self._done = client._loop.create_future()       # -> Result
        self._watching = False   # its result is pushed to this client, or AWAITed
        self._pull = False       # its result is not pushed by itself: AWAIT it
        self._packed = None      # the submitted job map, kept for resending
        self._batch = None       # refs of its SUBMIT not yet answered (client's)
        if id is not None:
            self._accepted.set_result(id)

    def __repr__(self):
        state = self._done.result().status if self.done() else "pending"
        return "<Job %s %s %s>" % (self.id, self.task or "", state)

    def __await__(self):
        # `await job`: job.get() without its coroutine, as gather and
        # as_completed make one awaiter per job
        if not self._done.done():
            self._client._watch(self)
            yield from asyncio.shield(self._done).__await__()
        return self._done.result().unwrap()

    def done(self):
        """True once the outcome is known (job.outcome)."""
        return self._done.done() and self._done.exception() is None

    @property
    def outcome(self):
        """The Result once done, else None."""
        return self._done.result() if self.done() else None

    async def accepted(self, timeout=None):
        """Wait until the broker has accepted the submit; return the job id.
        Raises Refused, TimeoutError, ClientClosed."""
        return await _wait(self._accepted, timeout)

    async def wait(self, timeout=None):
        """Wait for the job to finish and return its Result, whatever its
        status.  Raises TimeoutError (the job goes on) or ClientClosed."""
        self._client._watch(self)
        return await _wait(self._done, timeout)

    async def get(self, timeout=None):
        """Wait for the job; return its value, or raise JobFailed,
        JobTimeout, JobCancelled, JobLost, UnknownJob or Refused.
        `await job` is `await job.get()`."""
        return (await self.wait(timeout)).unwrap()

    async def cancel(self, timeout=None):
        """Ask the broker to cancel the job.  Returns the outcome: "removed"
        (it was queued: its result is now cancelled), "requested" (it is
        running: a coroutine job stops at its next yield), "done" (it had
        already finished) or "unknown"."""
        job_id = await self.accepted(timeout)
        return (await self._client.cancel([job_id], timeout=timeout))[job_id]

    async def status(self, timeout=None):
        """The job's JobStatus, asked of the broker."""
        job_id = await self.accepted(timeout)
        return (await self._client.status([job_id], timeout=timeout))[0]

    def add_done_callback(self, fn):
        """Call fn(job) from the event loop once the job is done."""
        self._client._watch(self)
        self._done.add_done_callback(lambda f: f.exception() is None and fn(self))

    # ---- called by the client

    def _set_accepted(self, job_id):
        self.id = job_id
        if not self._accepted.done():
            self._accepted.set_result(job_id)

    def _finish(self, result):
        if not self._done.done():
            self._done.set_result(result)

    def _refuse(self, code, text):
        result = Result(None, "refused", error=text, code=code,
                        times=Times(0, 0, 0, 0, 0, now_us()))
        if not self._accepted.done():
            self._accepted.set_exception(EXCEPTIONS["refused"](result))
            self._accepted.exception()  # the outcome is kept in _done: no warning
        self._finish(result)

    def _abandon(self, exc):
        for fut in (self._accepted, self._done):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()

    def _report(self, progress):
        self.progress = progress
        if self._on_progress is not None:
            self._on_progress(self, progress)
