"""A scripted broker for testing the client's side of the conversation.

A ROUTER socket on ipc:// in a temp dir, on the test's event loop.  The
test reads what the client sent (recv / expect) and answers by hand
(send), so it can produce what a real broker rarely does: silence, ERROR
hello after a restart, refusals, malformed frames.  Every receive is
bounded by a timeout.
"""

import asyncio
import os
import shutil
import tempfile

import zmq
import zmq.asyncio

from qjob import protocol as P


class FakeBroker:
    """curve=True makes it a CURVE server; its public key is self.public."""

    def __init__(self, curve=False):
        self.dir = tempfile.mkdtemp(prefix="qjob-py-")
        self.endpoint = "ipc://" + os.path.join(self.dir, "broker.sock")
        self.ctx = zmq.asyncio.Context.instance()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve:
            self.public, secret = zmq.curve_keypair()
            self.sock.curve_server = True
            self.sock.curve_secretkey = secret
        self.sock.bind(self.endpoint)

    def close(self):
        self.sock.close(linger=0)
        shutil.rmtree(self.dir, ignore_errors=True)

    async def recv(self, timeout=5.0):
        """(routing id, cmd, body) of the next message from any client."""
        frames = await asyncio.wait_for(self.sock.recv_multipart(), timeout)
        assert len(frames) == 2, "a client sent %d frames" % (len(frames) - 1)
        cmd, body = P.decode(frames[1])
        return frames[0], cmd, body

    async def expect(self, want, timeout=5.0, skip=(P.HEARTBEAT,)):
        """The next message of command want (skipping heartbeats)."""
        while True:
            peer, cmd, body = await self.recv(timeout)
            if cmd in skip and cmd != want:
                continue
            assert cmd == want, "expected %s, got %s %r" % (
                P.COMMAND_NAMES[want], P.COMMAND_NAMES.get(cmd), body)
            return peer, body

    async def nothing(self, seconds, skip=(P.HEARTBEAT,)):
        """Assert that nothing but skip arrives for seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while True:
            left = end - loop.time()
            if left <= 0:
                return
            try:
                peer, cmd, body = await self.recv(left)
            except asyncio.TimeoutError:
                return
            assert cmd in skip, "unexpected %s %r" % (P.COMMAND_NAMES.get(cmd), body)

    def send(self, peer, cmd, body):
        self.send_raw(peer, P.encode(cmd, body))

    def send_raw(self, peer, frame):
        self.sock.send_multipart([peer, frame])

    async def welcome(self, hb=1000, live=3):
        """Take the HELLO of a connecting client and answer WELCOME."""
        peer, hello = await self.expect(P.HELLO)
        self.send(peer, P.WELCOME, {"hb": hb, "live": live, "maxmsg": P.MAX_MSG,
                                    "name": "fake"})
        return peer, hello
