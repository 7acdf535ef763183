"""Active health checks of proxy targets (HAProxy's inter / rise / fall), run by the proxy manager.

Each round resolves every target again through the Resolver seam (a name that stops resolving takes its target out
at once, with the resolver's reason), checks it with the TCP observer, and judges the result with the ``rise_fall``
strategy of ``reconciler.health``. Rounds are jittered so that many agents do not check in step.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from reconciler.health import rise_fall
from reconciler.health.rise_fall import RiseFall, RiseFallState
from reconciler.model.proxy_config import CheckSettings
from reconciler.observers import tcp_check
from reconciler.observers.dns import resolve_endpoint
from reconciler.proxy.backends import Backend
from reconciler.system.clock import Clock
from reconciler.system.network import Connector
from reconciler.system.resolver import Resolver

log = logging.getLogger(__name__)


class HealthChecker:
    """Checks a list of backends until cancelled; the list may be replaced between rounds."""

    def __init__(
        self,
        name: str,
        backends: list[Backend],
        settings: CheckSettings,
        *,
        resolver: Resolver,
        connector: Connector,
        clock: Clock,
        rng: random.Random | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.on_change = on_change  # told when a target goes up or down or resolves to another address
        self.backends = backends
        self.settings = settings
        self.resolver = resolver
        self.connector = connector
        self.clock = clock
        self.states: dict[str, RiseFallState] = {}
        self.local_failures = 0  # checks not made for this machine's own reasons (EMFILE, ENOBUFS, ...)
        self.local_error = ""  # the last one's reason, and when (the clock's monotonic time)
        self.local_at: float | None = None
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
        try:
            endpoint = await asyncio.wait_for(
                resolve_endpoint(self.resolver, backend.address), max(self.settings.timeout, 0.001)
            )
        except (OSError, TimeoutError) as exc:
            if isinstance(exc, OSError) and exc.errno in tcp_check.LOCAL_ERRNOS:
                self._local_failure(backend, str(exc))
                return
            if backend.resolved is not None or not backend.reason:
                log.warning("target unresolvable app=%s target=%s error=%s", self.name, backend.address, exc)
            backend.resolved = None
            backend.reason = f"unresolvable: {exc or 'timeout'}"
            self._record(backend, ok=False, error=backend.reason)
            return
        backend.resolved = (endpoint.host, endpoint.port)
        facts = await tcp_check.check(self.connector, self.clock, endpoint.host, endpoint.port, self.settings)
        if facts.local:
            self._local_failure(backend, facts.error)
            return
        self._record(backend, ok=facts.ok, error=facts.error)

    def _local_failure(self, backend: Backend, error: str) -> None:
        """A check this machine could not make (out of descriptors, say) is no evidence about the target: its
        state stays as it was, and the agent's own problem is logged and counted."""
        self.local_failures += 1
        self.local_error, self.local_at = error, self.clock.monotonic()
        log.error("health check not made app=%s target=%s error=%s", self.name, backend.address, error)

    def _record(self, backend: Backend, *, ok: bool, error: str) -> None:
        before = self.states.get(backend.address)
        if before is None:
            before = RiseFallState() if backend.up else rise_fall.down(backend.reason or "down")
        rule = RiseFall(self.settings.rise, self.settings.fall)
        state = self.states[backend.address] = rise_fall.step(before, ok, rule=rule, error=error)
        if state.up and not backend.up:
            log.info("target up app=%s target=%s", self.name, backend.address)
        elif backend.up and not state.up:
            log.warning("target down app=%s target=%s error=%s", self.name, backend.address, error)
        backend.up = state.up
        if state.up and backend.resolved is not None:
            backend.reason = ""
        elif not ok and (not state.up or backend.resolved is None):
            backend.reason = error
