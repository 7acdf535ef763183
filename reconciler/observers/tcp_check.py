"""One active TCP check: connect within the timeout, optionally send bytes and expect an answer's start."""

from __future__ import annotations

import errno
import os

from reconciler.model.observed import ProbeFacts
from reconciler.model.proxy_config import CheckSettings
from reconciler.system.clock import Clock
from reconciler.system.network import Connector

# the agent's own trouble (descriptors, buffers, local ports or addresses), not the target's
LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EADDRNOTAVAIL})


async def check(connector: Connector, clock: Clock, host: str, port: int, settings: CheckSettings) -> ProbeFacts:
    """Never raises for a failed check: the failure is the observation."""
    started = clock.monotonic()
    expect = settings.expect or b""
    try:
        answer = await connector.exchange(host, port, send=settings.send, expect=len(expect), timeout=settings.timeout)
    except TimeoutError:
        return ProbeFacts(False, clock.monotonic() - started, "timeout")
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
        if exc.errno in LOCAL_ERRNOS:
            return ProbeFacts(False, clock.monotonic() - started, f"on this machine: {why}", local=True)
        return ProbeFacts(False, clock.monotonic() - started, why)
    if answer != expect:
        return ProbeFacts(False, clock.monotonic() - started, f"expected {expect!r}, got {answer!r}")
    return ProbeFacts(True, clock.monotonic() - started)
