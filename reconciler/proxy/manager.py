"""Runs proxy apps and reloads them in place: ports opened and closed, targets added and drained, without
dropping established connections. Backends are kept by address across reloads, so their health state survives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.proxy.app import AppSettings, ProxyApp
from reconciler.proxy.backends import Backend
from reconciler.proxy.health import CheckSettings, HealthChecker, literal_address
from reconciler.proxy.loop_host import LoopHost

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppConfig:
    """Everything one app needs; built from a TCPProxy (or IPPool) resource by the agent."""

    key: str
    listen: tuple[tuple[str, int], ...]
    targets: tuple[tuple[str, int], ...]  # (host:port, weight)
    settings: AppSettings = field(default_factory=AppSettings)
    checks: CheckSettings | None = field(default_factory=CheckSettings)


@dataclass
class _Running:
    app: ProxyApp
    checker: HealthChecker | None
    task: asyncio.Task[None] | None


class ProxyManager:
    """All apps of this agent, by key."""

    def __init__(self, *, drain: float = 30.0, known_down: Mapping[str, set[str]] | None = None) -> None:
        self.drain = drain
        self.running: dict[str, _Running] = {}
        # Targets that were down when the last process stopped: they start down and need `rise` good checks.
        self.known_down = {key: set(addresses) for key, addresses in (known_down or {}).items()}
        self._host: LoopHost | None = None

    def _backends(self, key: str, config: AppConfig, existing: list[Backend]) -> list[Backend]:
        by_address = {b.address: b for b in existing}
        down = self.known_down.get(key, set())
        backends = []
        for address, weight in config.targets:
            backend = by_address.get(address)
            if backend is None:
                backend = Backend(address, resolved=literal_address(address))
                if address in down and config.checks is not None:
                    backend.up = False
                    backend.reason = "down before the restart"
            backend.weight = weight
            backends.append(backend)
        return backends

    def health(self) -> dict[str, list[str]]:
        """App key -> addresses of targets that are down now (what the next process should not trust)."""
        return {
            key: sorted(b.address for b in running.app.backends if not b.up)
            for key, running in sorted(self.running.items())
            if any(not b.up for b in running.app.backends)
        }

    async def apply(self, configs: Mapping[str, AppConfig], *, scope: str = "") -> None:
        """Make the running apps whose key starts with ``scope`` match ``configs`` (keyed like AppConfig.key)."""
        for key in [k for k in self.running if k.startswith(scope) and k not in configs]:
            await self.remove(key)
        for key, config in configs.items():
            running = self.running.get(key)
            if running is None:
                if self._host is None:
                    self._host = LoopHost(asyncio.get_running_loop())
                app = ProxyApp(key, config.settings, self._backends(key, config, []), self._host.engine)
                running = self.running[key] = _Running(app, None, None)
            else:
                running.app.reconfigure(config.settings, self._backends(key, config, running.app.backends))
            self._checks(running, config)
            wanted = set(config.listen)
            for host, port in list(running.app.listeners):
                if (host, port) not in wanted:
                    await running.app.stop_listening(host, port)
            for host, port in config.listen:
                await running.app.listen(host, port)

    def _checks(self, running: _Running, config: AppConfig) -> None:
        app = running.app
        if config.checks is None:
            if running.task is not None:
                running.task.cancel()
            running.checker = running.task = None
            for backend in app.backends:
                backend.up = True
                backend.resolved = backend.resolved or literal_address(backend.address)
            return
        if running.checker is None:
            running.checker = HealthChecker(app.name, app.backends, config.checks)
            running.task = asyncio.get_running_loop().create_task(running.checker.run(), name=f"checks-{app.name}")
        else:
            running.checker.update(app.backends, config.checks)

    async def remove(self, key: str) -> None:
        running = self.running.pop(key, None)
        if running is None:
            return
        if running.task is not None:
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running.task
        await running.app.close(drain=self.drain)
        log.info("app removed app=%s", key)

    async def close(self) -> None:
        for key in list(self.running):
            await self.remove(key)
        if self._host is not None:
            self._host.close()
            self._host = None

    def snapshot(self) -> dict[str, Any]:
        """What runs: per app, listeners, backends with health, and counters (for status and metrics)."""
        result: dict[str, Any] = {}
        for key, running in sorted(self.running.items()):
            app = running.app
            states = running.checker.states if running.checker else {}
            result[key] = {
                "listen": sorted(f"{h}:{p}" for h, p in app.listeners),
                "targets": [
                    {
                        "address": b.address,
                        "weight": b.weight,
                        "up": b.up and b.resolved is not None,
                        "resolved": f"{b.resolved[0]}:{b.resolved[1]}" if b.resolved else None,
                        "reason": b.reason,
                        "active": b.active,
                        "connections": b.connections,
                        "failedChecks": states[b.address].failures if b.address in states else 0,
                    }
                    for b in app.backends
                ],
                "stats": vars(app.stats).copy(),
            }
        return result
