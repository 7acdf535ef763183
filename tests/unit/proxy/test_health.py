"""The proxy's health checker through the fakes (no sockets): a refused check counts against the target, a check
this machine cannot make (EMFILE, EADDRNOTAVAIL) does not and is kept as the agent's own problem; a banner that
does not match is a failure."""

from __future__ import annotations

import asyncio
import errno

from reconciler.model.proxy_config import CheckSettings
from reconciler.proxy.backends import Backend
from reconciler.proxy.health import HealthChecker
from reconciler.testing import FakeClock, FakeConnector, FakeResolver


def _checker(
    connector: FakeConnector, clock: FakeClock, backend: Backend, expect: bytes | None = None
) -> HealthChecker:
    settings = CheckSettings(interval=1, timeout=1, rise=1, fall=1, send=b"PING" if expect else None, expect=expect)
    return HealthChecker("apps/web", [backend], settings, resolver=FakeResolver(), connector=connector, clock=clock)


def test_local_failures_are_kept_apart_from_the_targets_health() -> None:
    connector, clock = FakeConnector(), FakeClock()
    backend = Backend("192.0.2.10:7001", resolved=None)
    checker = _checker(connector, clock, backend)

    async def scenario() -> None:
        connector.answers[("192.0.2.10", 7001)] = b""
        await checker.round()
        assert backend.up
        for code in (errno.EMFILE, errno.EADDRNOTAVAIL):
            connector.answers[("192.0.2.10", 7001)] = OSError(code, "local")
            clock.advance(1)
            await checker.round()
            assert backend.up  # fall is 1: one counted failure would take it down
        assert checker.local_failures == 2
        assert checker.local_error == "on this machine: Cannot assign requested address"
        assert checker.local_at == clock.monotonic()
        connector.answers[("192.0.2.10", 7001)] = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
        await checker.round()
        assert not backend.up
        assert "Connection refused" in backend.reason

    asyncio.run(scenario())
    assert connector.calls == [("192.0.2.10", 7001)] * 4


def test_a_banner_that_does_not_match_is_a_failure() -> None:
    connector, clock = FakeConnector({("192.0.2.10", 7001): b"NOPE"}), FakeClock()
    backend = Backend("192.0.2.10:7001", resolved=None)
    checker = _checker(connector, clock, backend, expect=b"PONG")
    asyncio.run(checker.round())
    assert not backend.up
    assert "expected b'PONG', got b'NOPE'" in backend.reason
    assert checker.local_failures == 0
