"""The data plane: proxy apps on one engine, configured by whole snapshots of what should run.

The same class runs inside the agent's event loop and inside each worker process. The agent's
``ProxyManager`` owns health checks and desired state and sends a snapshot whenever either changes; the plane
makes its apps match it (ports opened and closed, targets replaced, removed apps drained) and reports what
it could not listen on and its counters. Snapshots are plain frozen dataclasses so they cross a pipe.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from reconciler.model.proxy_config import AppSettings
from reconciler.model.values import format_host_port
from reconciler.proxy.app import ProxyApp
from reconciler.proxy.backends import Backend
from reconciler.proxy.engine import Engine
from reconciler.system.ports import listen_hint

log = logging.getLogger(__name__)

DRAIN_CHECK = 0.05  # seconds between looks at draining apps


@dataclass(frozen=True)
class TargetSpec:
    address: str
    weight: int
    up: bool
    resolved: tuple[str, int] | None


@dataclass(frozen=True)
class AppSpec:
    listen: tuple[tuple[str, int], ...]
    settings: AppSettings
    targets: tuple[TargetSpec, ...]


Snapshot = Mapping[str, AppSpec]
ListenErrors = dict[str, dict[str, str]]  # app key -> "host:port" -> why it could not listen


@dataclass
class AppCounters:
    """What one plane counted for one app; the manager adds up the planes."""

    stats: dict[str, int]
    targets: dict[str, tuple[int, int, int, int]]  # address -> (active, connections, failed connects, ejected)
    listening: list[str] = field(default_factory=list)

    def add(self, other: AppCounters) -> None:
        for key, value in other.stats.items():
            self.stats[key] = self.stats.get(key, 0) + value
        for address, values in other.targets.items():
            mine = self.targets.get(address, (0, 0, 0, 0))
            self.targets[address] = (
                mine[0] + values[0],
                mine[1] + values[1],
                mine[2] + values[2],
                mine[3] + values[3],  # in how many data planes it is out
            )
        self.listening = sorted(set(self.listening) | set(other.listening))


class DataPlane:
    def __init__(self, engine: Engine, *, drain: float) -> None:
        self.engine = engine
        self.drain = drain
        self.apps: dict[str, ProxyApp] = {}
        self.draining: list[tuple[ProxyApp, float]] = []
        self._checking = False

    @property
    def idle(self) -> bool:
        return not self.apps and not self.draining

    def apply(self, snapshot: Snapshot) -> ListenErrors:
        """Make the running apps match ``snapshot``; established connections are never dropped by a change."""
        for key in [k for k in self.apps if k not in snapshot]:
            self._retire(self.apps.pop(key))
        errors: ListenErrors = {}
        for key, spec in snapshot.items():
            app = self.apps.get(key)
            backends = _backends(spec, app.backends if app else [])
            if app is None:
                app = self.apps[key] = ProxyApp(key, spec.settings, backends, self.engine)
            else:
                app.reconfigure(spec.settings, backends)
            wanted = set(spec.listen)
            for host, port in [address for address in app.listeners if address not in wanted]:
                app.stop_listening(host, port)
            for host, port in spec.listen:
                try:
                    app.listen(host, port)
                except OSError as exc:
                    why = (exc.strerror or str(exc)) + (listen_hint(port) if exc.errno == errno.EADDRINUSE else "")
                    # the agent logs the failed apply and shows it in status: each worker repeating it at every
                    # retry says nothing more
                    log.debug("cannot listen app=%s address=%s:%d error=%s", key, host, port, why)
                    errors.setdefault(key, {})[format_host_port(host, port)] = why
        return errors

    def stop(self) -> None:
        """Stop accepting everywhere and drain (the process is shutting down)."""
        for key in list(self.apps):
            self._retire(self.apps.pop(key))

    def counters(self) -> dict[str, AppCounters]:
        return {
            key: AppCounters(
                stats=vars(app.stats).copy(),
                targets={b.address: (b.active, b.connections, b.failures, int(b.ejected)) for b in app.backends},
                listening=sorted(format_host_port(h, p) for h, p in app.listeners),
            )
            for key, app in self.apps.items()
        }

    def _retire(self, app: ProxyApp) -> None:
        app.stop_accepting()
        self.draining.append((app, self.engine.now + self.drain))
        log.info("draining app=%s connections=%d", app.name, len(app.relays))
        if not self._checking:
            self._checking = True
            self.engine.call_at(self.engine.now + DRAIN_CHECK, self._check_draining)

    def _check_draining(self) -> None:
        now = self.engine.now
        still: list[tuple[ProxyApp, float]] = []
        for app, deadline in self.draining:
            if app.relays and now < deadline:
                still.append((app, deadline))
                continue
            if app.relays:
                log.warning("drain time over app=%s cut=%d", app.name, len(app.relays))
            app.cut()
        self.draining = still
        self._checking = bool(still)
        if still:
            self.engine.call_at(now + DRAIN_CHECK, self._check_draining)


def _backends(spec: AppSpec, existing: list[Backend]) -> list[Backend]:
    """The plane's backends for ``spec``, kept by address so their counters survive a reload."""
    by_address = {b.address: b for b in existing}
    backends = []
    for target in spec.targets:
        backend = by_address.get(target.address) or Backend(target.address)
        backend.weight = target.weight
        backend.up = target.up
        backend.resolved = target.resolved
        backends.append(backend)
    return backends


class DataPath(Protocol):
    """Where the data plane runs: in the agent's loop, or in worker processes. The manager sees only this."""

    async def apply(self, snapshot: Snapshot) -> ListenErrors:
        """Run ``snapshot`` and report what could not listen."""

    def push(self, snapshot: Snapshot) -> None:
        """Run ``snapshot`` (a health change) without waiting for the outcome."""

    def counters(self) -> dict[str, AppCounters]: ...

    async def close(self) -> None:
        """Stop accepting, drain, stop."""
