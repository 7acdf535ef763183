"""Active health checks against real sockets: the TCP observer (connect, send/expect), names through the
Resolver seam, rise/fall, and survival of a failing round."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.model.proxy_config import CheckSettings
from reconciler.observers.tcp_check import check
from reconciler.proxy.backends import Backend
from reconciler.proxy.health import HealthChecker
from reconciler.system.clock import SystemClock
from reconciler.system.network import TcpConnector
from reconciler.testing import FakeResolver
from tests.conftest import descriptors_exhausted
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
    """The answer must start with `expect`; a wrong answer or a refused port fails the check, with why."""

    async def scenario() -> None:
        server, port = await _banner_server(b"+PONG\r\n")
        connector, clock = TcpConnector(), SystemClock()
        good = CheckSettings(timeout=1, send=b"PING\n", expect=b"+PONG")
        passed = await check(connector, clock, "127.0.0.1", port, good)
        assert passed.ok
        assert 0 <= passed.seconds < 1
        wrong = await check(
            connector, clock, "127.0.0.1", port, CheckSettings(timeout=1, send=b"PING\n", expect=b"-ERR")
        )
        assert (wrong.ok, wrong.error) == (False, "expected b'-ERR', got b'+PON'")
        refused = await check(connector, clock, "127.0.0.1", free_port(), good)
        assert (refused.ok, "refused" in refused.error.lower()) == (False, True)
        server.close()

    asyncio.run(scenario())


def test_names_go_through_the_resolver_and_unresolvable_targets_are_down_at_once() -> None:
    """A name resolves through the Resolver seam; one that stops resolving is out at once, with the reason."""

    async def scenario() -> None:
        server, port = await _banner_server(b"")
        resolver = FakeResolver({"svc.test": ("127.0.0.1",)})
        backend = Backend(f"svc.test:{port}", resolved=None)
        settings = CheckSettings(interval=0.05, timeout=0.5, rise=1, fall=3)
        checker = HealthChecker(
            "t", [backend], settings, resolver=resolver, connector=TcpConnector(), clock=SystemClock()
        )
        await checker.round()
        assert (backend.up, backend.resolved) == (True, ("127.0.0.1", port))
        resolver.answers.clear()
        await checker.round()
        assert backend.resolved is None
        assert backend.reason.startswith("unresolvable: svc.test: no such name")
        assert resolver.questions == ["svc.test", "svc.test"]
        server.close()

    asyncio.run(scenario())


def test_a_failing_round_does_not_stop_the_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error in one round is logged; the next rounds still run and mark targets."""

    async def scenario() -> None:
        backend = Backend(f"127.0.0.1:{free_port()}", resolved=None)
        checker = HealthChecker(
            "t",
            [backend],
            CheckSettings(interval=0.05, timeout=0.05, fall=1),
            resolver=FakeResolver(),
            connector=TcpConnector(),
            clock=SystemClock(),
        )
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


def test_a_check_this_machine_cannot_make_does_not_count_against_the_target() -> None:
    """Out of descriptors (EMFILE, as under a flood of connections), a real check fails on this machine: the
    target stays up and the failure is counted as the agent's own; with descriptors back, checks go on."""

    async def scenario() -> None:
        server, port = await _banner_server(b"")
        backend = Backend(f"127.0.0.1:{port}", resolved=None)
        checker = HealthChecker(
            "demo",
            [backend],
            CheckSettings(interval=0.1, timeout=1, rise=1, fall=1),
            resolver=FakeResolver({}),
            connector=TcpConnector(),
            clock=SystemClock(),
        )
        await checker.round()
        assert backend.up
        with descriptors_exhausted():
            for _ in range(3):  # fall is 1: one counted failure would take it down
                await checker.round()
            assert backend.up, backend.reason
            assert checker.local_failures == 3
            facts = await check(TcpConnector(), SystemClock(), "127.0.0.1", port, CheckSettings(timeout=1))
            assert (facts.ok, facts.local) == (False, True)
            assert "on this machine" in facts.error
        await checker.round()
        assert backend.up
        assert checker.local_failures == 3
        server.close()

    asyncio.run(scenario())
