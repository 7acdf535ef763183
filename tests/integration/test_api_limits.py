"""The agent's API on a real socket, attacked as an outsider would (issue 23): signed bodies that arrive in small
delayed segments or in one big write are read whole; a body over the limit is 413; a flood of connections that
never send their headers holds at most the cap of descriptors, is closed after the idle limit, and the API
answers again; the descriptor limit is raised to the hard one and the API's share sized from it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import socket
import subprocess
import sys
import time

import pytest

from reconciler.api import server
from tests.unit.api.test_server import SECRET, Handle

pytestmark = pytest.mark.integration


def _signed(body: bytes) -> bytes:
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    head = (
        "POST /hooks/git HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\n"
        f"X-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _send(port: int, payload: bytes, *, segment: int = 0, pause: float = 0.0) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if segment:
            for start in range(0, len(payload), segment):
                writer.write(payload[start : start + segment])
                await writer.drain()
                await asyncio.sleep(pause)
        else:
            writer.write(payload)
            await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        return int(status.split()[1])
    finally:
        writer.close()


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_bodies_are_read_whole_and_floods_stay_under_the_cap() -> None:
    async def scenario() -> None:
        handle = Handle()
        limits = server.Limits(connections=50, idle=0.5)
        listener = await server.start(handle, "127.0.0.1", 0, limits=limits)
        port = listener.server.sockets[0].getsockname()[1]
        try:
            small = b'{"ref": "refs/heads/main", "pad": "' + b"x" * 3000 + b'"}'
            assert await _send(port, _signed(small), segment=1400, pause=0.005) == 202  # was 401
            big = b'{"pad": "' + b"y" * 500_000 + b'"}'
            assert await _send(port, _signed(big)) == 202  # was 401
            over = b"z" * (server.MAX_WEBHOOK_BYTES + 1)
            assert await _send(port, _signed(over)) == 413
            assert handle.webhooks == ["accepted", "accepted", "too_large"]

            before = _descriptors()
            flood = []
            for _ in range(400):  # connections that never send their headers
                sock = socket.socket()
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    sock.connect(("127.0.0.1", port))
                flood.append(sock)
            await asyncio.sleep(0.2)
            held, first = len(limits.open), set(limits.open)
            during = _descriptors() - before - len(flood)  # the server's side of the flood
            print(
                f"flood of 400 idle connections: {held} held by the API (cap 50), {limits.refused} refused, "
                f"server descriptors +{during}"
            )
            assert held <= 50
            assert limits.refused > 0  # the rest wait in the kernel's accept queue, holding none of ours
            assert during <= 50
            await asyncio.sleep(limits.idle + 0.5)
            assert not first & set(limits.open)  # each closed after the idle limit (the queued ones come next)
            assert len(limits.open) <= 50
            for sock in flood:
                sock.close()
            await asyncio.sleep(limits.idle + 0.5)
            assert limits.open == {}
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
            writer.close()

        finally:
            await listener.cleanup()

    asyncio.run(scenario())


def test_headers_sent_a_byte_at_a_time_are_cut_at_the_idle_limit() -> None:
    async def scenario() -> None:
        limits = server.Limits(connections=50, idle=0.5)
        listener = await server.start(Handle(), "127.0.0.1", 0, limits=limits)
        port = listener.server.sockets[0].getsockname()[1]
        try:
            # headers sent a byte at a time, forever: closed at the idle limit all the same
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            with pytest.raises((ConnectionError, OSError)):  # noqa: PT012 - the dribble is what is tested
                for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 100:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.05)
                    if reader.at_eof():
                        raise ConnectionResetError
            assert time.monotonic() - started < limits.idle + 2
            writer.close()
        finally:
            await listener.cleanup()

    asyncio.run(scenario())


def test_the_descriptor_limit_is_raised_and_the_apis_share_sized_from_it() -> None:
    """In a child process: lowering the hard limit cannot be undone."""
    probe = (
        "import resource\n"
        "from reconciler.api.server import descriptor_budget\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 2048))\n"
        "print(descriptor_budget(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["512", "2048"]
