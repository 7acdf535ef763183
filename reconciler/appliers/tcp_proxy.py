"""The TCPProxy capability: runs the apps of every TCPProxy resource in the agent's proxy manager."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from reconciler.appliers.base import Observed
from reconciler.model.common import Resource
from reconciler.model.tcp_proxy import TCPProxy
from reconciler.planning.plan import TargetPlan
from reconciler.planning.tcp_proxy import desired_apps, plan_tcp_proxy
from reconciler.proxy.app import AppSettings
from reconciler.proxy.health import CheckSettings
from reconciler.proxy.manager import AppConfig, ProxyManager


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def app_configs(proxy: TCPProxy) -> dict[str, AppConfig]:
    spec = proxy.spec
    check = spec.healthCheck
    checks = CheckSettings(
        interval=check.interval.total_seconds(),
        timeout=check.timeout.total_seconds(),
        rise=check.rise,
        fall=check.fall,
        send=check.send.encode() if check.send else None,
        expect=check.expect.encode() if check.expect else None,
    )
    configs = {}
    by_name = {app.name: app for app in spec.apps}
    for key, desired in desired_apps(proxy).items():
        app = by_name[key.split("/", 1)[1]]
        settings = AppSettings(
            balance=app.balance or spec.balance,
            connect_timeout=spec.connectTimeout.total_seconds(),
            retries=spec.retries,
            idle_timeout=_seconds(spec.idleTimeout),
            max_connections=spec.maxConnections,
            eject_after=spec.outlierDetection.consecutiveFailures,
            eject_for=spec.outlierDetection.ejectFor.total_seconds(),
        )
        configs[key] = AppConfig(key, desired.listen, desired.targets, settings, checks)
    return configs


# Counters change with every connection; they belong in /metrics. Status (committed to git) keeps what only
# changes when the world does: listeners, targets, their health and why.
_STABLE_TARGET_FIELDS = ("address", "weight", "up", "resolved", "reason")


def _stable(app: dict[str, Any]) -> dict[str, Any]:
    return {
        "listen": app["listen"],
        "targets": [{k: t[k] for k in _STABLE_TARGET_FIELDS} for t in app["targets"]],
    }


class TCPProxyCapability:
    kind = TCPProxy.KIND

    def __init__(self, manager: ProxyManager) -> None:
        self.manager = manager

    def observe_interval(self, resource: Resource) -> timedelta | None:
        assert isinstance(resource, TCPProxy)
        return resource.spec.healthCheck.interval * 5  # status follows health; checks run on their own clock

    async def observe(self, resource: Resource) -> Observed:
        prefix = f"{resource.metadata.name}/"
        running = {k: v for k, v in self.manager.snapshot().items() if k.startswith(prefix)}
        return Observed(facts=running, summary={"apps": {k: _stable(v) for k, v in running.items()}})

    def plan(self, resource: Resource, observed: Observed, *, now: float) -> list[TargetPlan]:
        assert isinstance(resource, TCPProxy)
        return plan_tcp_proxy(resource, observed.facts or {})

    async def apply(self, resource: Resource, target: TargetPlan) -> None:
        assert isinstance(resource, TCPProxy)
        await self.manager.apply(app_configs(resource), scope=f"{resource.metadata.name}/")

    async def forget(self, kind: str, name: str) -> None:
        await self.manager.apply({}, scope=f"{name}/")
