"""Exceptions of the qjob client.

Waiting that runs out raises the standard TimeoutError (asyncio.TimeoutError
is the same class): the job goes on and can be awaited again.  A job that
reached its own run time limit is JobTimeout, which is *not* a TimeoutError,
so that the two cannot be confused in an except clause.
"""


class QjobError(Exception):
    """Base class of every error this package raises on purpose."""


class BrokerUnreachable(QjobError):
    """No WELCOME from the broker within connect_timeout."""


class ClientClosed(QjobError):
    """The client was closed while this call still needed it."""


class Denied(QjobError):
    """The broker refused this connection (authentication, role)."""


class RequestError(QjobError):
    """The broker answered a request (stats, status, cancel ...) with ERROR.
    code is the error name ("unknown_job", "internal" ...), text its message."""

    def __init__(self, code, text):
        super().__init__("%s: %s" % (code, text))
        self.code = code
        self.text = text


class JobError(QjobError):
    """A job ended without a value.  result is its Result (status, error,
    attempts, worker, times); job_id its id (None if it never got one)."""

    def __init__(self, result):
        what = "job %s" % result.id if result.id else "job"
        text = result.error or result.status
        super().__init__("%s %s: %s" % (what, result.status, text))
        self.result = result
        self.job_id = result.id


class JobFailed(JobError):
    """The task reported an error (status "error"); str(e) carries its message."""


class JobTimeout(JobError):
    """The job ran past its own run time limit (status "timeout")."""


class JobCancelled(JobError):
    """The job was cancelled (status "cancelled")."""


class JobLost(JobError):
    """Its worker died on every attempt (status "lost")."""


class UnknownJob(JobError):
    """The broker has no job of that id (never existed, or its result expired)."""


class Refused(JobError):
    """The broker refused the submit; result.code says why ("queue_full",
    "limit", "shutdown" ...)."""


EXCEPTIONS = {"error": JobFailed, "timeout": JobTimeout, "cancelled": JobCancelled,
              "lost": JobLost, "unknown": UnknownJob, "refused": Refused}
