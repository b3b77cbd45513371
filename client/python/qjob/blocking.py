"""The blocking face of the qjob client, for code without an event loop.

    from qjob.blocking import Client

    with Client("tcp://127.0.0.1:5555") as client:
        job = client.submit("pi", samples=10**7)
        print(job.get(timeout=60))
        jobs = client.submit_many("pi", [{"samples": 10**6}] * 8)
        for job in client.as_completed(jobs):
            print(job.id, job.get())

Each Client runs an asyncio client (qjob.Client) on a private event loop in
a daemon thread of its own, so heartbeats and results keep flowing while
the calling thread does other work; every call here hands a coroutine to
that loop and waits for it.  A Client and its jobs may be used from any
thread.  Progress callbacks run on the client's thread.
"""

import asyncio
import threading

from . import client as aio
from .errors import ClientClosed


class Client:
    """A blocking client: the same options as qjob.Client; connects at once
    (raises BrokerUnreachable after connect_timeout)."""

    def __init__(self, broker=None, **options):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="qjob-client",
                                        daemon=True)
        self._thread.start()
        self._closed = False
        try:
            self._c = self._call(aio.connect(broker, **options))
        except BaseException:
            self._stop()
            raise

    def _call(self, coro):
        """Run coro on the client's loop; return its result or raise."""
        if self._loop.is_closed():
            coro.close()
            raise ClientClosed("the qjob client is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()  # Ctrl-C in the caller: stop waiting there too
            raise

    async def _sync(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)

    def _stop(self):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def close(self, linger=1.0):
        """Send what is queued, say BYE, close; jobs left pending raise
        ClientClosed.  Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._c.close(linger))
        finally:
            self._stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def asyncio_client(self):
        """The underlying qjob.Client (use it only on its own loop)."""
        return self._c

    def submit(self, task, args=None, /, *, timeout=None, **options):
        """Submit a job and wait until the broker accepts it; returns its
        Job.  Arguments and options as qjob.Client.submit."""
        return Job(self, self._call(self._c.submit(task, args, timeout=timeout, **options)))

    def submit_nowait(self, task, args=None, /, **options):
        """Submit a job without waiting for the broker; returns its Job."""
        return Job(self, self._call(self._sync(self._c.submit_nowait, task, args, **options)))

    def submit_many(self, task, args_list, *, timeout=None, **options):
        """One job per item of args_list, sent in batches; returns the Jobs
        once the broker has answered them all (refused ones raise Refused
        when awaited)."""
        jobs = self._call(self._c.submit_many(task, list(args_list), timeout=timeout,
                                              **options))
        return [Job(self, j) for j in jobs]

    def attach(self, job_id):
        """A Job for a job id submitted elsewhere."""
        return Job(self, self._call(self._sync(self._c.attach, job_id)))

    def gather(self, jobs, timeout=None):
        """The values of jobs, in order; raises the first failure, or
        TimeoutError."""
        return self._call(self._c.gather(*(j._job for j in jobs), timeout=timeout))

    def as_completed(self, jobs, timeout=None):
        """Iterate over jobs in the order they finish; TimeoutError if
        timeout seconds pass first."""
        by_aio = {id(j._job): j for j in jobs}
        it = aio.as_completed([j._job for j in jobs], timeout)
        try:
            while True:
                try:
                    done = self._call(it.__anext__())
                except StopAsyncIteration:
                    return
                yield by_aio[id(done)]
        finally:
            if not self._closed:
                self._call(it.aclose())

    def stats(self, timeout=None):
        return self._call(self._c.stats(timeout))

    def status(self, ids, timeout=None):
        return self._call(self._c.status(ids, timeout))

    def cancel(self, ids, timeout=None):
        return self._call(self._c.cancel(ids, timeout))

    def dead(self, queue=None, limit=100, timeout=None):
        return self._call(self._c.dead(queue, limit, timeout))

    def requeue(self, ids, timeout=None):
        return self._call(self._c.requeue(ids, timeout))

    stats.__doc__ = aio.Client.stats.__doc__
    status.__doc__ = aio.Client.status.__doc__
    cancel.__doc__ = aio.Client.cancel.__doc__
    dead.__doc__ = aio.Client.dead.__doc__
    requeue.__doc__ = aio.Client.requeue.__doc__


class Job:
    """A blocking handle on a qjob.Job: the same attributes, and calls that
    wait in the calling thread."""

    def __init__(self, client, job):
        self._client = client
        self._job = job

    def __repr__(self):
        return repr(self._job)

    id = property(lambda self: self._job.id)
    task = property(lambda self: self._job.task)
    progress = property(lambda self: self._job.progress)
    outcome = property(lambda self: self._job.outcome)

    def done(self):
        return self._job.done()

    def accepted(self, timeout=None):
        """Wait for the broker to accept the submit; returns the job id."""
        return self._client._call(self._job.accepted(timeout))

    def wait(self, timeout=None):
        """Wait for the job to finish; returns its Result."""
        return self._client._call(self._job.wait(timeout))

    def get(self, timeout=None):
        """Wait for the job; return its value or raise its JobError."""
        return self._client._call(self._job.get(timeout))

    def cancel(self, timeout=None):
        """Ask the broker to cancel the job; returns the outcome."""
        return self._client._call(self._job.cancel(timeout))

    def status(self, timeout=None):
        """The job's JobStatus, asked of the broker."""
        return self._client._call(self._job.status(timeout))
