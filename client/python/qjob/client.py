"""The asyncio client: one DEALER connection to a qjob broker.

One task per client (the session task) reads the socket, keeps the
heartbeat and watches the broker's liveness (PROTOCOL.md §4.2); everything
else is done by the caller's coroutines, on the same event loop.  Submits
made in the same loop iteration leave in one SUBMIT (§5.4); AWAITs too.

Reconnecting: if nothing arrives from the broker for hb x live ms, the
session closes its socket, opens a new one and says HELLO again with the
same cid; if the broker answers ERROR hello (it restarted, or forgot us),
the session says HELLO again on the same socket.  Either way it then resends
every submit not yet ACCEPTED with the same ref, AWAITs every job it still
waits for and repeats every request not yet answered; the broker recognises
resent submits by (cid, ref), and duplicate answers are ignored here.
"""

import asyncio
import itertools
import logging
import os
import socket
import time
from collections import deque

import zmq
import zmq.asyncio

from . import keys
from . import protocol as P
from .errors import BrokerUnreachable, ClientClosed, Denied, RequestError
from .job import Job, JobStatus, Progress, Result, now_us

log = logging.getLogger("qjob")

DEFAULT_BROKER = "tcp://127.0.0.1:5555"
DEFAULT_HB_MS = 1000
DEFAULT_LIVE = 3
_DRAIN_MAX = 1000   # messages handled per wake-up before others get the loop


def _ms(seconds, what):
    """Seconds as whole milliseconds for the wire, at least 1; None or 0
    mean unset (no run time limit, the broker's backoff or heartbeat)."""
    if not seconds:
        return None
    if seconds < 0:
        raise ValueError("%s must not be negative" % what)
    return max(1, round(seconds * 1000))


class _Socket(zmq.asyncio.Socket):
    """pyzmq 24 may run an event handler it scheduled after the socket is
    closed, and it then fails with ENOTSOCK: such a call has nothing to do."""

    def _handle_events(self, fd=0, events=0):
        if not self.closed:
            super()._handle_events(fd, events)


class Client:
    """A connection to a qjob broker.

        async with qjob.Client("tcp://127.0.0.1:5555") as client:
            job = await client.submit("pi", samples=10**7)
            print(await job)

    broker: endpoint (default $QJOB_BROKER, else tcp://127.0.0.1:5555).
    name: shown in the broker's logs and stats (default host:pid).
    heartbeat: wished heartbeat interval in seconds (default: the broker's).
    connect_timeout: seconds connect() waits for WELCOME.
    request_timeout: default bound, in seconds, on stats/status/cancel/dead/
      requeue and on submit's wait for acceptance (None: no bound).
    max_inflight: submits sent and not yet accepted, at most; more wait in
      the client.
    curve_server_key, curve_public_key, curve_secret_key: CURVE keys as Z85
      text (40 characters): the broker's public key turns CURVE on; the
      client's own pair defaults to a new one (a broker with a ZAP handler
      admits only keys it knows).
    curve_secret_file, broker_key_file: the same from key files (qclient
      keygen's NAME.key, mode 0600, and the broker's NAME.pub; PROTOCOL.md
      §1.1); default $QJOB_CURVE_SECRET and $QJOB_BROKER_KEY when no key is
      given as text.
    """

    def __init__(self, broker=None, *, name=None, heartbeat=None, connect_timeout=5.0,
                 request_timeout=10.0, max_inflight=10000, curve_server_key=None,
                 curve_public_key=None, curve_secret_key=None, curve_secret_file=None,
                 broker_key_file=None, context=None):
        self.broker = broker or os.environ.get("QJOB_BROKER") or DEFAULT_BROKER
        self.name = name or "%s:%d" % (socket.gethostname(), os.getpid())
        if len(self.name.encode()) > P.MAX_NAME:
            raise ValueError("name is over %d bytes" % P.MAX_NAME)
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self.max_inflight = max_inflight
        self._hb_wish = _ms(heartbeat, "heartbeat")
        as_text = curve_server_key or curve_public_key or curve_secret_key
        if not as_text:
            curve_secret_file = curve_secret_file or os.environ.get(keys.ENV_SECRET)
            broker_key_file = broker_key_file or os.environ.get(keys.ENV_BROKER)
        if curve_secret_file or broker_key_file:
            if as_text:
                raise ValueError("give CURVE keys as files or as Z85 text, not both")
            if not (curve_secret_file and broker_key_file):
                raise ValueError("CURVE needs both curve_secret_file and broker_key_file "
                                 "(or $QJOB_CURVE_SECRET and $QJOB_BROKER_KEY)")
            curve_public_key, curve_secret_key = keys.load_secret(curve_secret_file)
            curve_server_key = keys.load_public(broker_key_file)
        if curve_server_key is None and (curve_public_key or curve_secret_key):
            raise ValueError("CURVE needs the broker's public key (curve_server_key)")
        if curve_server_key is not None and bool(curve_public_key) != bool(curve_secret_key):
            raise ValueError("give both curve_public_key and curve_secret_key, or neither")
        self._curve = None
        if curve_server_key is not None:
            if not zmq.has("curve"):
                raise ValueError("this libzmq has no CURVE support")
            if curve_public_key is None:
                curve_public_key, curve_secret_key = zmq.curve_keypair()
            self._curve = tuple(k.encode() if isinstance(k, str) else k for k in
                                (curve_server_key, curve_public_key, curve_secret_key))
            for k in self._curve:
                if len(k) != 40:
                    raise ValueError("CURVE keys are 40 characters of Z85 text")
        self._ctx = context or zmq.asyncio.Context.instance()
        self._cid = os.urandom(P.CID_LEN)
        self._refs = itertools.count(1)
        self._rids = itertools.count(1)
        self._loop = None
        self._sock = None
        self._session = None       # the session task
        self._closed = False
        self._welcome = None       # future: the first WELCOME (or why there was none)
        self._hello_pending = False  # HELLO sent, its WELCOME not yet seen
        self.hb_ms = self._hb_wish or DEFAULT_HB_MS
        self.liveness = DEFAULT_LIVE
        self.max_msg = P.MAX_MSG
        self.broker_name = None
        self.bad_frames = 0        # frames from the broker this client refused
        self.reconnects = 0
        self._last_recv = self._last_send = 0.0
        self._outq = deque()       # frames waiting for the socket (over its HWM)
        self._writer = None
        self._unsent = deque()     # Jobs submitted, not yet sent
        self._unacked = {}         # ref -> Job: sent, not yet ACCEPTED
        self._batches = deque()    # each SUBMIT sent: the set of its refs not yet answered
        self._waiting = {}         # job id -> [Job]: results wanted
        self._await_ids = []       # ids to AWAIT at the next flush
        self._requests = {}        # rid -> (frame, future)
        self._flush_handle = None

    # ------------------------------------------------------------ lifecycle

    async def connect(self):
        """Connect and wait for the broker's WELCOME; returns self.  Raises
        BrokerUnreachable after connect_timeout, Denied if refused."""
        if self._loop is not None:
            raise RuntimeError("connect() may be called once")
        self._loop = asyncio.get_running_loop()
        self._welcome = self._loop.create_future()
        self._open()
        self._session = self._loop.create_task(self._run(), name="qjob-session")
        try:
            await asyncio.wait_for(asyncio.shield(self._welcome), self.connect_timeout)
        except asyncio.TimeoutError:
            await self.close(linger=0)
            raise BrokerUnreachable("no answer from the broker at %s within %gs: is qbroker "
                                    "running there?" % (self.broker, self.connect_timeout)) \
                from None
        except BaseException:
            await self.close(linger=0)
            raise
        return self

    async def __aenter__(self):
        return await self.connect()

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self, linger=1.0):
        """Send what is queued (waiting up to linger seconds for the socket
        to take it), say BYE and close.  Jobs still pending raise
        ClientClosed to their waiters; the jobs themselves go on."""
        if self._closed:
            return
        if self._sock is not None and self._welcome.done() and not self._welcome.exception():
            self._flush()
            self._send(P.encode(P.BYE, {}))
            if self._outq and linger:
                try:
                    await asyncio.wait_for(asyncio.shield(self._writer), linger)
                except Exception:
                    pass  # closing anyway: the socket's linger sends what it can
        self._shutdown(ClientClosed("the qjob client was closed"), linger)

    def _shutdown(self, exc, linger=0):
        """Close at once: stop the tasks, close the socket (letting it send
        for linger seconds), give exc to everything still waiting."""
        if self._closed:
            return
        self._closed = True
        for task in (self._session, self._writer):
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        if self._sock is not None:
            self._sock.close(linger=int(linger * 1000))
            self._sock = None
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_exception(exc)
            self._welcome.exception()
        for job in list(self._unsent) + list(self._unacked.values()):
            job._abandon(exc)
        for jobs in self._waiting.values():
            for job in jobs:
                job._abandon(exc)
        for _, fut in self._requests.values():
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()
        self._unsent.clear()
        self._unacked.clear()
        self._waiting.clear()

    # ------------------------------------------------------------------ jobs

    def submit_nowait(self, task, args=None, /, *, queue=None, priority=0, job_timeout=None,
                      retries=0, backoff=None, delay=None, at=None, key=None, detach=False,
                      progress=None, **kwargs):
        """Submit a job and return its Job at once; the submit leaves with
        the others of this loop iteration.  Task arguments are either one
        value (args) or keyword arguments (a map).  Options:

        queue (default "default"), priority (-128..127, higher first),
        job_timeout (seconds the job may run), retries (extra attempts),
        backoff (seconds before the first retry, doubling), delay (seconds
        before it may run) or at (unix time before which it may not run),
        key (idempotency key: a second submit with the key gets the same
        job), detach (do not push the result; awaiting the job asks for
        it), progress (True, or a callable fn(job, Progress): have the
        worker's progress reports pushed; the latest is job.progress).

        Raises ValueError or TypeError for arguments the protocol cannot
        carry, ClientClosed if the client is closed."""
        self._check_open()
        if kwargs:
            if args is not None:
                raise TypeError("give the task arguments as one value or as keywords, not both")
            args = kwargs
        job = {"ref": next(self._refs), "task": task, "ts": now_us()}
        if args is not None:
            job["args"] = P.pack_value(args)
        if queue is not None:
            job["q"] = queue
        if priority:
            job["pri"] = priority
        for field, seconds in (("timeout", job_timeout), ("backoff", backoff)):
            ms = _ms(seconds, field)
            if ms is not None:
                job[field] = ms
        if retries:
            job["retries"] = retries
        if delay is not None and at is not None:
            raise TypeError("give delay or at, not both")
        if delay is not None:
            at = time.time() + delay
        if at is not None:
            job["at"] = max(1, int(at * 1e6))
        if key is not None:
            job["key"] = key
        if detach:
            job["detach"] = True
        if progress:
            job["progress"] = True
        try:
            packed = P.pack_job(job)
        except P.ProtocolError as e:
            raise ValueError(e.text) from None
        if len(packed) + P.SUBMIT_OVERHEAD > self.max_msg:
            raise ValueError("the job is %d bytes, more than the broker takes in one message"
                             % len(packed))
        h = Job(self, task, on_progress=progress if callable(progress) else None)
        h.ref = job["ref"]
        h._packed = packed
        # The broker pushes a result to the job's first submitter only: a
        # submit that a key may have matched to an older job AWAITs it.
        h._pull = bool(detach) or key is not None
        h._watching = not detach
        self._unsent.append(h)
        self._schedule_flush()
        return h

    async def submit(self, task, args=None, /, *, timeout=None, **options):
        """Submit a job and wait until the broker has accepted it (from then
        on it is never lost); returns its Job.  Arguments and options as in
        submit_nowait; timeout bounds the wait for acceptance (default:
        request_timeout).  Raises Refused (queue full, limits, shutdown),
        TimeoutError, ValueError, TypeError."""
        job = self.submit_nowait(task, args, **options)
        await job.accepted(self._timeout(timeout))
        return job

    async def submit_many(self, task, args_list, *, timeout=None, **options):
        """Submit one job per item of args_list (each item is that job's
        arguments) and wait until the broker has answered them all; returns
        the Jobs in order.  A refused job does not raise here: awaiting it
        raises Refused."""
        jobs = [self.submit_nowait(task, args, **options) for args in args_list]
        if jobs:
            await asyncio.wait_for(
                asyncio.gather(*(asyncio.shield(j._accepted) for j in jobs),
                               return_exceptions=True), self._timeout(timeout))
        return jobs

    def attach(self, job_id):
        """A Job for a job submitted elsewhere, by id: awaiting it gives its
        result (the broker keeps results for --result-ttl); an id the
        broker does not know raises UnknownJob."""
        self._check_open()
        if type(job_id) is not int or not 0 < job_id <= P.U64:
            raise ValueError("a job id is a positive 64-bit integer, not %r" % (job_id,))
        job = Job(self, id=job_id)
        self._watch(job)
        return job

    async def gather(self, *jobs, timeout=None):
        """The values of jobs, in order, once all are done; raises the
        first failure (in argument order) as its JobError, TimeoutError if
        timeout runs out first.  Like asyncio.gather(*jobs) without a task
        per job."""
        for job in jobs:
            job._client._watch(job)
        pending = [j._done for j in jobs if not j._done.done()]
        if pending:
            done, left = await asyncio.wait(pending, timeout=timeout)
            if left:
                raise asyncio.TimeoutError("%d of %d jobs not done after %gs"
                                           % (len(left), len(jobs), timeout))
        return [j._done.result().unwrap() for j in jobs]

    def as_completed(self, jobs, timeout=None):
        """Async iterator over jobs in the order they finish:
        `async for job in client.as_completed(jobs): print(await job)`.
        Raises TimeoutError if timeout seconds pass before all are done."""
        return as_completed(jobs, timeout)

    # -------------------------------------------------------------- requests

    async def stats(self, timeout=None):
        """The broker's figures (PROTOCOL.md §5.3) as a dict."""
        rep = await self._request(P.STATS, {}, timeout)
        rep.pop("rid", None)
        return rep

    async def status(self, ids, timeout=None):
        """JobStatus of each id, in order."""
        out = []
        for chunk in _chunks(list(ids)):
            rep = await self._request(P.STATUS, {"ids": chunk}, timeout)
            out += [JobStatus(r) for r in rep["jobs"]]
        return out

    async def cancel(self, ids, timeout=None):
        """Cancel jobs by id: {id: outcome} with outcome "removed",
        "requested", "done" or "unknown" (see Job.cancel)."""
        out = {}
        for chunk in _chunks(list(ids)):
            rep = await self._request(P.CANCEL, {"ids": chunk}, timeout)
            out.update((i, P.name_of(P.CANCEL_NAMES, o)) for i, o, *_ in rep["items"])
        return out

    async def dead(self, queue=None, limit=100, timeout=None):
        """The dead-letter list (jobs whose last attempt failed or was
        lost), as JobStatus, at most limit of them, optionally of one queue."""
        body = {"limit": limit}
        if queue is not None:
            body["q"] = queue
        rep = await self._request(P.DEAD, body, timeout)
        return [JobStatus(r) for r in rep["jobs"]]

    async def requeue(self, ids, timeout=None):
        """Queue dead jobs again: {id: "requeued" or "unknown"}."""
        out = {}
        for chunk in _chunks(list(ids)):
            rep = await self._request(P.REQUEUE, {"ids": chunk}, timeout)
            out.update((i, P.name_of(P.REQUEUE_NAMES, o)) for i, o, *_ in rep["items"])
        return out

    def _timeout(self, timeout):
        return self.request_timeout if timeout is None else timeout

    async def _request(self, cmd, body, timeout):
        self._check_open()
        rid = next(self._rids)
        body["rid"] = rid
        frame = P.encode(cmd, body)
        fut = self._loop.create_future()
        self._requests[rid] = (frame, fut)
        try:
            self._send(frame)
            return await asyncio.wait_for(fut, self._timeout(timeout))
        finally:
            self._requests.pop(rid, None)

    # ------------------------------------------------------------- internals

    def _check_open(self):
        if self._closed:
            raise ClientClosed("the qjob client is closed")
        if self._loop is None:
            raise RuntimeError("connect the client first (await client.connect(), or "
                               "async with)")

    def _watch(self, job):
        """Make sure job's result will reach this client: a submit's result
        is pushed unless it was detached; other jobs are AWAITed, once they
        have an id."""
        if job._watching or job._done.done() or self._closed:
            return
        job._watching = True
        if job.id is not None:
            self._wait_for(job)

    def _wait_for(self, job):
        self._waiting.setdefault(job.id, []).append(job)
        if job.ref is None or job._pull:
            self._await_ids.append(job.id)
            self._schedule_flush()

    def _schedule_flush(self):
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self):
        """Send batched submits (within max_inflight) and AWAITs."""
        self._flush_handle = None
        if self._closed:
            return
        n = min(len(self._unsent), self.max_inflight - len(self._unacked))
        jobs = [self._unsent.popleft() for _ in range(n)]
        for job in jobs:
            self._unacked[job.ref] = job
        self._send_jobs(jobs)
        ids, self._await_ids = self._await_ids, []
        for chunk in _chunks(ids):
            self._send(P.encode(P.AWAIT, {"ids": chunk}))

    def _send_jobs(self, jobs):
        """Send jobs in SUBMITs of at most MAX_BATCH jobs and max_msg bytes."""
        batch, size = [], P.SUBMIT_OVERHEAD
        for job in jobs:
            if batch and (len(batch) == P.MAX_BATCH or size + len(job._packed) > self.max_msg):
                self._send_submit(batch)
                batch, size = [], P.SUBMIT_OVERHEAD
            batch.append(job)
            size += len(job._packed)
        if batch:
            self._send_submit(batch)

    def _send_submit(self, jobs):
        refs = {j.ref for j in jobs}
        for j in jobs:
            j._batch = refs
        self._batches.append(refs)
        self._send(P.submit_frame([j._packed for j in jobs]))

    def _send(self, frame):
        """Send one frame now, or queue it behind others if the socket is
        full; frames keep their order."""
        self._last_send = time.monotonic()
        if self._outq:
            self._outq.append(frame)
            return
        try:
            self._sock.send(frame, zmq.NOBLOCK).result()
        except zmq.Again:
            self._outq.append(frame)
            self._writer = self._loop.create_task(self._write(self._sock))

    async def _write(self, sock):
        while self._outq:
            await sock.send(self._outq[0])
            self._outq.popleft()

    def _open(self):
        """A new socket, connected, with HELLO sent first."""
        sock = _Socket(self._ctx, zmq.DEALER)
        sock.setsockopt(zmq.MAXMSGSIZE, P.MAX_MSG)
        sock.setsockopt(zmq.LINGER, 0)
        if self._curve:
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = self._curve
        sock.connect(self.broker)
        self._sock = sock
        self._hello()

    def _hello(self):
        body = {"role": P.ROLE_CLIENT, "cid": self._cid, "name": self.name}
        if self._hb_wish:
            body["hb"] = self._hb_wish
        self._send(P.encode(P.HELLO, body))
        self._hello_pending = True
        self._last_recv = time.monotonic()

    def _reconnect(self, why):
        log.warning("qjob: %s: reconnecting to %s", why, self.broker)
        self.reconnects += 1
        if self._writer is not None:
            self._writer.cancel()
        self._outq.clear()
        self._sock.close(linger=0)
        self._open()
        self._resend()

    def _resend(self):
        """After a new HELLO: submits not yet accepted (same refs), AWAIT
        for every job still waited for, requests not yet answered."""
        self._batches.clear()
        self._send_jobs(list(self._unacked.values()))
        self._await_ids = []
        for chunk in _chunks(list(self._waiting)):
            self._send(P.encode(P.AWAIT, {"ids": chunk}))
        for frame, _ in list(self._requests.values()):
            self._send(frame)

    async def _run(self):
        """The session: read and dispatch, heartbeat, liveness."""
        try:
            while not self._closed:
                now = time.monotonic()
                hb = self.hb_ms / 1000
                dead_at = self._last_recv + hb * self.liveness
                if now >= dead_at:
                    # A loop kept busy elsewhere may not have read what came.
                    self._drain(self._sock)
                    if self._last_recv + hb * self.liveness <= time.monotonic():
                        self._reconnect("nothing from the broker for %d ms"
                                        % (self.hb_ms * self.liveness))
                    continue
                if now - self._last_send >= hb:
                    self._send(P.encode(P.HEARTBEAT, {}))
                wake = min(dead_at, self._last_send + hb)
                sock = self._sock
                events = await sock.poll(max(1, int((wake - time.monotonic()) * 1000) + 1),
                                         zmq.POLLIN)
                if events & zmq.POLLIN and sock is self._sock:
                    self._drain(sock)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug here must not leave waiters hanging silently
            log.exception("qjob: the client session failed")
            self._shutdown(e)

    def _drain(self, sock):
        for _ in range(_DRAIN_MAX):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK).result()
            except zmq.Again:
                return
            self._last_recv = time.monotonic()
            if len(frames) != 1:
                self.bad_frames += 1
                log.warning("qjob: dropped a %d-frame message from the broker", len(frames))
                continue
            try:
                cmd, body = P.decode(frames[0])
            except P.ProtocolError as e:
                self.bad_frames += 1
                log.warning("qjob: dropped a malformed message from the broker: %s", e)
                continue
            handler = self._handlers.get(cmd)
            if handler is None:
                self.bad_frames += 1
                log.warning("qjob: dropped a %s message: not one a client receives",
                            P.name_of(P.COMMAND_NAMES, cmd))
                continue
            handler(self, body)
            if self._closed or sock is not self._sock:
                return

    # ---- message handlers

    def _on_welcome(self, body):
        self.hb_ms = max(1, body["hb"])
        self.liveness = max(1, body["live"])
        self.max_msg = min(P.MAX_MSG, body["maxmsg"]) or P.MAX_MSG
        self.broker_name = body.get("name")
        self._hello_pending = False
        if not self._welcome.done():
            self._welcome.set_result(body)

    def _on_heartbeat(self, body):
        pass

    def _on_bye(self, body):
        # The broker is shutting down.  A new socket with HELLO queued
        # first is ready for whichever broker comes up at the endpoint.
        self._reconnect("the broker said BYE")

    def _on_error(self, body):
        code = body["code"]
        name = P.name_of(P.ERROR_NAMES, code)
        rid = body.get("rid")
        about = body.get("about")
        if code == P.E_HELLO:
            # The broker does not know this connection (it restarted, or
            # declared us dead).  Answers to what we sent before the new
            # HELLO come before its WELCOME: one HELLO is enough for them.
            if not self._hello_pending:
                log.warning("qjob: the broker asked for HELLO again: resending")
                self._hello()
                self._resend()
            return
        if about == P.HELLO or code == P.E_DENIED:
            self._shutdown(Denied("the broker refused this client: %s: %s"
                                  % (name, body["text"])))
            return
        if rid is not None and rid in self._requests:
            fut = self._requests[rid][1]
            if not fut.done():
                fut.set_exception(RequestError(name, body["text"]))
            return
        self._drop_answered()
        if about == P.SUBMIT and self._batches:
            # A SUBMIT refused as a whole.  Answers to SUBMITs keep their
            # order (§4.3): it is the oldest one not answered yet.
            for ref in self._batches.popleft():
                job = self._unacked.pop(ref, None)
                if job is not None:
                    job._refuse(name, body["text"])
            self._schedule_flush()
            return
        log.warning("qjob: the broker refused a %s message: %s: %s",
                    P.name_of(P.COMMAND_NAMES, about or 0), name, body["text"])

    def _on_accepted(self, body):
        # Items are matched by ref: one ACCEPTED may answer several SUBMITs,
        # or part of one (§4.3).
        for ack in body["acks"]:
            job = self._unacked.pop(ack[0], None)
            if job is None:
                continue  # an answer to a resent submit, already known
            if ack[1]:
                self._accept(job, ack[1])
            else:
                job._batch.discard(job.ref)
                job._refuse(P.name_of(P.ERROR_NAMES, ack[2]),
                            ack[3] if len(ack) > 3 and ack[3] is not None else None)
        self._drop_answered()
        if self._unsent:
            self._schedule_flush()

    def _drop_answered(self):
        while self._batches and not self._batches[0]:
            self._batches.popleft()

    def _accept(self, job, job_id):
        job._batch.discard(job.ref)
        job._set_accepted(job_id)
        if job._watching:
            self._wait_for(job)

    def _on_results(self, body):
        delivered = now_us()
        for r in body["results"]:
            ref = r.get("ref")
            if ref and ref in self._unacked:
                # a result on a new connection before the resent submit's ACCEPTED
                self._accept(self._unacked.pop(ref), r["id"])
            jobs = self._waiting.pop(r["id"], None)
            if not jobs:
                continue
            result = Result.from_wire(r, delivered)
            for job in jobs:
                job._finish(result)

    def _on_progress(self, body):
        progress = Progress(body["done"], body["total"], body.get("note"))
        for job in self._waiting.get(body["id"], ()):
            job._report(progress)

    def _on_reply(self, body):
        entry = self._requests.get(body["rid"])
        if entry is not None and not entry[1].done():
            entry[1].set_result(body)

    _handlers = {
        P.WELCOME: _on_welcome, P.HEARTBEAT: _on_heartbeat, P.BYE: _on_bye, P.ERROR: _on_error,
        P.ACCEPTED: _on_accepted, P.RESULTS: _on_results, P.PROGRESS: _on_progress,
        P.STATUS_REP: _on_reply, P.CANCEL_REP: _on_reply, P.STATS_REP: _on_reply,
        P.DEAD_REP: _on_reply, P.REQUEUE_REP: _on_reply,
    }


def _chunks(items, n=P.MAX_BATCH):
    for i in range(0, len(items), n):
        yield items[i:i + n]


async def connect(broker=None, **options):
    """A connected Client (see Client for the options)."""
    return await Client(broker, **options).connect()


async def as_completed(jobs, timeout=None):
    """Async iterator over jobs in the order they finish (each yielded Job
    is done: `await job` gives its value or raises).  Raises TimeoutError if
    timeout seconds pass before all are done; the jobs go on."""
    jobs = list(jobs)
    if not jobs:
        return
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    queue = asyncio.Queue()
    callbacks = []
    for job in jobs:
        job._client._watch(job)
        cb = (lambda j: lambda f: queue.put_nowait(j))(job)
        job._done.add_done_callback(cb)
        callbacks.append((job, cb))
    try:
        for _ in jobs:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            job = await asyncio.wait_for(queue.get(), left)
            yield job
    finally:
        for job, cb in callbacks:
            job._done.remove_done_callback(cb)
