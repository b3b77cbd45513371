"""qjob: a Python client for the qjob job queue, asyncio first.

    import asyncio, qjob

    async def main():
        async with qjob.Client("tcp://127.0.0.1:5555") as client:
            job = await client.submit("pi", samples=10**7)
            print(await job)
            jobs = [client.submit_nowait("pi", samples=10**6) for _ in range(8)]
            print(await asyncio.gather(*jobs))
            async for job in client.as_completed(jobs):
                print(job.id, job.outcome.value)

    asyncio.run(main())

qjob.blocking has the same calls for code without an event loop.  The
client speaks the wire protocol of proto/PROTOCOL.md itself (pure Python over
pyzmq and msgpack): qjob.protocol is that codec.
"""

from .client import Client, as_completed, connect
from .errors import (BrokerUnreachable, ClientClosed, Denied, JobCancelled, JobError,
                     JobFailed, JobLost, JobTimeout, QjobError, Refused, RequestError,
                     UnknownJob)
from .job import Job, JobStatus, Progress, Result, Times

__version__ = "0.1.0"

__all__ = [
    "Client", "connect", "as_completed", "Job", "Result", "Times", "Progress", "JobStatus",
    "QjobError", "BrokerUnreachable", "ClientClosed", "Denied", "RequestError", "JobError",
    "JobFailed", "JobTimeout", "JobCancelled", "JobLost", "UnknownJob", "Refused",
]
