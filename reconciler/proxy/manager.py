"""Runs proxy apps and reloads them in place: ports opened and closed, targets added and drained, without
dropping established connections.

The manager owns what is decided once per agent: the apps' configs, the targets with their health (checks run
here, not per worker; targets are kept by address across reloads, so their health survives), and which data
path carries the traffic. Every change of either is sent to the data path as one snapshot. What runs is reported
as ``ProxyAppFacts``, read by planning, status and metrics alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.model.observed import Health, ProxyAppFacts, ProxyCounters, ProxyTargetFacts
from reconciler.model.proxy_config import AppConfig
from reconciler.model.values import format_host_port, host_and_port
from reconciler.proxy.backends import Backend
from reconciler.proxy.health import HealthChecker
from reconciler.proxy.in_process import InProcess
from reconciler.proxy.plane import AppCounters, AppSpec, DataPath, Snapshot, TargetSpec
from reconciler.proxy.workers import WorkerProcesses
from reconciler.system.clock import Clock, SystemClock
from reconciler.system.network import Connector, TcpConnector
from reconciler.system.resolver import DnsResolver, Resolver, literal

log = logging.getLogger(__name__)


def _literal_endpoint(address: str) -> tuple[str, int] | None:
    """(IP, port) when the target is an IP literal (nothing to resolve), else None."""
    host, port = host_and_port(address)
    ip = literal(host)
    return (str(ip), port) if ip is not None else None


@dataclass
class _Running:
    config: AppConfig
    backends: list[Backend]
    checker: HealthChecker | None = None
    task: asyncio.Task[None] | None = None
    listen_errors: dict[str, str] = field(default_factory=dict)
    judged: dict[str, tuple[bool, str]] = field(default_factory=dict)  # health set from outside (set_health)


class ProxyManager:
    """All apps of this agent, by key. ``workers`` 0 runs the data plane in the agent's own loop."""

    def __init__(
        self,
        *,
        drain: float = 30.0,
        known_down: Mapping[str, set[str]] | None = None,
        workers: int = 0,
        resolver: Resolver | None = None,
        connector: Connector | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.drain = drain
        self.resolver = resolver or DnsResolver()
        self.connector = connector or TcpConnector()
        self.clock = clock or SystemClock()
        self.workers = workers
        self.running: dict[str, _Running] = {}
        # Targets that were down when the last process stopped: they start down and need `rise` good checks.
        self.known_down = {key: set(addresses) for key, addresses in (known_down or {}).items()}
        self.data_path: DataPath | None = None
        self._push_pending = False

    def _path(self) -> DataPath:
        if self.data_path is None:
            loop = asyncio.get_running_loop()
            if self.workers:
                self.data_path = WorkerProcesses(loop, self.workers, drain=self.drain)
            else:
                self.data_path = InProcess(loop, drain=self.drain)
        return self.data_path

    def kill(self) -> None:
        """End the worker processes at once (``close`` ran out of time); in-process planes end with the agent."""
        if isinstance(self.data_path, WorkerProcesses):
            self.data_path.kill()

    def worker_restarts(self) -> int:
        """How often a worker process died and was started again."""
        return self.data_path.restarts if isinstance(self.data_path, WorkerProcesses) else 0

    def _backends(self, key: str, config: AppConfig, existing: list[Backend]) -> list[Backend]:
        by_address = {b.address: b for b in existing}
        down = self.known_down.get(key, set())
        backends = []
        for address, weight in config.targets:
            backend = by_address.get(address)
            if backend is None:
                backend = Backend(address, resolved=_literal_endpoint(address))
                if address in down and config.checks is not None:
                    backend.up = False
                    backend.reason = "down before the restart"
            backend.weight = weight
            backends.append(backend)
        return backends

    def health(self) -> dict[str, list[str]]:
        """App key -> addresses of targets that are down now (what the next process should not trust)."""
        return {
            key: sorted(b.address for b in running.backends if not b.up)
            for key, running in sorted(self.running.items())
            if any(not b.up for b in running.backends)
        }

    def _snapshot(self) -> Snapshot:
        return {
            key: AppSpec(
                running.config.listen,
                running.config.settings,
                tuple(TargetSpec(b.address, b.weight, b.up, b.resolved) for b in running.backends),
            )
            for key, running in self.running.items()
        }

    async def apply(self, configs: Mapping[str, AppConfig], *, scope: str = "") -> None:
        """Make the running apps whose key starts with ``scope`` match ``configs`` (keyed like AppConfig.key).

        Raises OSError when an address cannot be listened on; everything else is applied all the same.
        """
        removed = [k for k in self.running if k.startswith(scope) and k not in configs]
        await self._change(configs, removed)

    async def set_app(self, key: str, config: AppConfig | None) -> None:
        """Run app ``key`` with ``config``, or stop it (None). Raises OSError as ``apply`` does."""
        await self._change({key: config} if config is not None else {}, [key] if config is None else [])

    async def _change(self, configs: Mapping[str, AppConfig], removed: list[str]) -> None:
        for key in removed:
            if key in self.running:
                self._stop_checks(self.running.pop(key))
                log.info("app removed app=%s", key)
        for key, config in configs.items():
            running = self.running.get(key)
            backends = self._backends(key, config, running.backends if running else [])
            if running is None:
                running = self.running[key] = _Running(config, backends)
            else:
                running.config, running.backends = config, backends
            self._checks(running)
        errors = await self._path().apply(self._snapshot())
        failed = []
        for key, running in self.running.items():
            running.listen_errors = errors.get(key, {})
            if key in configs:
                failed += [f"{address}: {why}" for address, why in sorted(running.listen_errors.items())]
        if failed:
            raise OSError(f"cannot listen on {', '.join(failed)}")

    def _health_changed(self) -> None:
        """A check changed a target: send the data path the new picture (once per loop turn)."""
        if not self._push_pending and self.data_path is not None:
            self._push_pending = True
            asyncio.get_running_loop().call_soon(self._push)

    def _push(self) -> None:
        self._push_pending = False
        if self.data_path is not None:
            self.data_path.push(self._snapshot())

    def _checks(self, running: _Running) -> None:
        checks = running.config.checks
        if checks is None:
            self._stop_checks(running)
            for backend in running.backends:
                backend.up, backend.reason = running.judged.get(backend.address, (True, ""))
                backend.resolved = backend.resolved or _literal_endpoint(backend.address)
            return
        if running.checker is None:
            running.checker = HealthChecker(
                running.config.key,
                running.backends,
                checks,
                resolver=self.resolver,
                connector=self.connector,
                clock=self.clock,
                on_change=self._health_changed,
            )
            running.task = asyncio.get_running_loop().create_task(
                running.checker.run(), name=f"checks-{running.config.key}"
            )
        else:
            running.checker.update(running.backends, checks)

    @staticmethod
    def _stop_checks(running: _Running) -> None:
        if running.task is not None:
            running.task.cancel()
        running.checker = running.task = None

    def set_health(self, key: str, judged: Mapping[str, tuple[bool, str]]) -> None:
        """Availability decided outside the proxy (an IP pool's access log) for some of app ``key``'s targets:
        address -> (up, reason); the others keep theirs. Kept across config changes; apps with their own checks
        ignore it."""
        running = self.running.get(key)
        if running is None or running.config.checks is not None:
            return
        targets = {b.address for b in running.backends}
        running.judged = {a: v for a, v in {**running.judged, **judged}.items() if a in targets}
        changed = False
        for backend in running.backends:
            up, reason = running.judged.get(backend.address, (True, ""))
            if (backend.up, backend.reason) != (up, reason):
                backend.up, backend.reason, changed = up, reason, True
        if changed:
            self._health_changed()

    async def close(self) -> None:
        """Stop every app: no new connections, established ones drain (up to ``drain`` seconds)."""
        tasks = [r.task for r in self.running.values() if r.task is not None]
        for running in self.running.values():
            self._stop_checks(running)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.running.clear()
        if self.data_path is not None:
            await self.data_path.close()
            self.data_path = None

    async def close_by(self, deadline: float) -> bool:
        """``close``, given until ``deadline`` (the loop's clock); past it the workers are ended. True when every
        connection drained in time."""
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(self.close(), timeout=max(0.1, remaining))
        except TimeoutError:
            self.kill()
            return False
        return True

    def config(self, key: str) -> AppConfig | None:
        """The config app ``key`` runs with now, None when it does not run."""
        running = self.running.get(key)
        return running.config if running is not None else None

    def _check_problem(self, running: _Running) -> str:
        """The reason of the last check this machine could not make, while recent (within five check intervals,
        the status's own clock): shown as the agent's problem, never counted against the target."""
        checker, checks = running.checker, running.config.checks
        if checker is None or checks is None or checker.local_at is None:
            return ""
        recent = self.clock.monotonic() - checker.local_at <= 5 * checks.interval
        return checker.local_error if recent else ""

    def snapshot(self) -> dict[str, ProxyAppFacts]:
        """What runs: per app, listeners, targets with health, settings and counters."""
        counted = self.data_path.counters() if self.data_path is not None else {}
        result: dict[str, ProxyAppFacts] = {}
        for key, running in sorted(self.running.items()):
            counters = counted.get(key) or AppCounters({}, {})
            states = running.checker.states if running.checker else {}
            targets = []
            for b in running.backends:
                active, connections, failures, ejected = counters.targets.get(b.address, (0, 0, 0, 0))
                health: Health = (
                    "down"
                    if not b.up or b.resolved is None
                    else "up"
                    if b.address in states or b.address in running.judged
                    else "unknown"
                )
                targets.append(
                    ProxyTargetFacts(
                        address=b.address,
                        weight=b.weight,
                        health=health,
                        resolved=format_host_port(*b.resolved) if b.resolved else None,
                        reason=b.reason,
                        active=active,
                        connections=connections,
                        connect_failures=failures,
                        ejected=ejected > 0,
                        failed_checks=states[b.address].failures if b.address in states else 0,
                    )
                )
            config = running.config
            result[key] = ProxyAppFacts(
                key=key,
                # what the data path said it listens on (counters, which lag, are not asked)
                listen=tuple(
                    sorted(
                        address
                        for address in (format_host_port(h, p) for h, p in config.listen)
                        if address not in running.listen_errors
                    )
                ),
                targets=tuple(targets),
                settings=config.settings,
                checks=config.checks,
                listen_errors=dict(running.listen_errors),
                counters=ProxyCounters(**counters.stats),
                checks_not_made=running.checker.local_failures if running.checker else 0,
                check_problem=self._check_problem(running),
            )
        return result
