"""Active health checks against real sockets: connect, send/expect, names, and survival of a failing round."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.proxy.backends import Backend
from reconciler.proxy.health import CheckSettings, HealthChecker, probe, resolve
from tests.integration.agents import free_port

pytestmark = pytest.mark.integration


async def _banner_server(banner: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(5)
        writer.write(banner)
        await writer.drain()
        writer.close()

    port = free_port()
    return await asyncio.start_server(handle, "127.0.0.1", port), port


def test_send_and_expect() -> None:
    """The answer must start with `expect`; a wrong answer or a refused port fails the check."""

    async def scenario() -> None:
        server, port = await _banner_server(b"+PONG\r\n")
        good = CheckSettings(timeout=1, send=b"PING\n", expect=b"+PONG")
        await probe(("127.0.0.1", port), good)
        with pytest.raises(OSError, match="expected"):
            await probe(("127.0.0.1", port), CheckSettings(timeout=1, send=b"PING\n", expect=b"-ERR"))
        with pytest.raises(ConnectionRefusedError):
            await probe(("127.0.0.1", free_port()), good)
        server.close()

    asyncio.run(scenario())


def test_names_resolve_and_literals_pass_through() -> None:
    """localhost resolves to loopback; an IP literal is not looked up; a bad name raises OSError."""

    async def scenario() -> None:
        assert (await resolve("localhost:80"))[0] in ("127.0.0.1", "::1")
        assert await resolve("[2001:db8::1]:443") == ("2001:db8::1", 443)
        with pytest.raises(OSError, match=r"(not known|no address|resolution)"):
            await resolve("nonexistent.invalid:1")

    asyncio.run(scenario())


def test_a_failing_round_does_not_stop_the_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error in one round is logged; the next rounds still run and mark targets."""

    async def scenario() -> None:
        backend = Backend(f"127.0.0.1:{free_port()}", resolved=None)
        checker = HealthChecker("t", [backend], CheckSettings(interval=0.05, timeout=0.05, fall=1))
        real_round = checker.round
        calls = 0

        async def flaky_round() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("bug")
            await real_round()

        monkeypatch.setattr(checker, "round", flaky_round)
        task = asyncio.create_task(checker.run())
        await asyncio.sleep(0.4)
        task.cancel()
        assert calls >= 3
        assert backend.up is False
        assert checker.states[backend.address].failures >= 1

    asyncio.run(scenario())
