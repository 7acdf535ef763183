"""Active health checks (HAProxy's inter / rise / fall): TCP connect, optional send/expect, names re-resolved.

Each check round resolves every target again (a name that stops resolving takes its target out, with the reason),
connects within ``timeout``, and counts consecutive results: ``fall`` failures mark a target down, ``rise``
successes mark it up again. Rounds are jittered so that many agents do not check in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.proxy.backends import Backend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckSettings:
    interval: float = 2.0
    timeout: float = 1.0
    rise: int = 2
    fall: int = 3
    send: bytes | None = None
    expect: bytes | None = None


@dataclass
class CheckState:
    """Consecutive results of one backend."""

    successes: int = 0
    failures: int = 0
    last_error: str = ""
    checks: int = 0
    history: list[bool] = field(default_factory=list)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def literal_address(address: str) -> tuple[str, int] | None:
    """(IP, port) when the host is an IP literal (nothing to resolve), else None."""
    host, port = split_address(address)
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        return None


async def resolve(address: str) -> tuple[str, int]:
    """host:port -> (IP, port); raises OSError when the name does not resolve."""
    literal = literal_address(address)
    if literal is not None:
        return literal
    host, port = split_address(address)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"{host} has no address")
    return str(infos[0][4][0]), port


async def probe(target: tuple[str, int], settings: CheckSettings) -> None:
    """One check; raises OSError or TimeoutError when it fails."""

    async def attempt() -> None:
        reader, writer = await asyncio.open_connection(*target)
        try:
            if settings.send:
                writer.write(settings.send)
                await writer.drain()
            if settings.expect:
                answer = await reader.readexactly(len(settings.expect))
                if answer != settings.expect:
                    raise OSError(f"expected {settings.expect!r}, got {answer!r}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    try:
        await asyncio.wait_for(attempt(), settings.timeout)
    except asyncio.IncompleteReadError as exc:
        raise OSError("closed before the expected answer") from exc


class HealthChecker:
    """Checks a list of backends until cancelled; the list may be replaced between rounds."""

    def __init__(
        self,
        name: str,
        backends: list[Backend],
        settings: CheckSettings,
        *,
        rng: random.Random | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.on_change = on_change  # told when a target goes up or down or resolves to another address
        self.backends = backends
        self.settings = settings
        self.states: dict[str, CheckState] = {}
        self.rng = rng or random.Random()

    def update(self, backends: list[Backend], settings: CheckSettings) -> None:
        self.backends = backends
        self.settings = settings
        known = {b.address for b in backends}
        for address in list(self.states):
            if address not in known:
                del self.states[address]

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # a bug in one round must not stop checking: the next round may recover
                log.exception("health check round failed app=%s", self.name)
            jitter = self.settings.interval * (0.9 + 0.2 * self.rng.random())
            await asyncio.sleep(jitter)

    async def round(self) -> None:
        await asyncio.gather(*(self._check(b) for b in list(self.backends)))

    async def _check(self, backend: Backend) -> None:
        before = (backend.up, backend.resolved)
        try:
            await self._check_once(backend)
        finally:
            if (backend.up, backend.resolved) != before and self.on_change is not None:
                self.on_change()

    async def _check_once(self, backend: Backend) -> None:
        state = self.states.setdefault(backend.address, CheckState())
        state.checks += 1
        try:
            backend.resolved = await asyncio.wait_for(resolve(backend.address), self.settings.timeout)
        except (OSError, TimeoutError) as exc:
            if backend.resolved is not None or not backend.reason:
                log.warning("target unresolvable app=%s target=%s error=%s", self.name, backend.address, exc)
            backend.resolved = None
            backend.reason = f"unresolvable: {exc or 'timeout'}"
            self._record(backend, state, ok=False, error=backend.reason)
            return
        try:
            await probe(backend.resolved, self.settings)
        except (OSError, TimeoutError) as exc:
            self._record(backend, state, ok=False, error=str(exc) or "timeout")
        else:
            self._record(backend, state, ok=True, error="")

    def _record(self, backend: Backend, state: CheckState, *, ok: bool, error: str) -> None:
        state.history = [*state.history[-19:], ok]
        if ok:
            state.successes += 1
            state.failures = 0
            if not backend.up and state.successes >= self.settings.rise:
                backend.up = True
                backend.reason = ""
                log.info("target up app=%s target=%s", self.name, backend.address)
        else:
            state.failures += 1
            state.successes = 0
            state.last_error = error
            if backend.up and state.failures >= self.settings.fall:
                backend.up = False
                log.warning("target down app=%s target=%s error=%s", self.name, backend.address, error)
            if not backend.up or backend.resolved is None:
                backend.reason = error
