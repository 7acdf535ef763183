"""The TCPProxy capability: runs the apps of every TCPProxy resource in its own proxy manager.

Observing reads what the manager runs (typed ``ProxyAppFacts``); applying carries out the gated plan's changes on
the app's running config. Its part of the state file keeps the targets that were down when the agent stopped (so
that after a restart they need ``rise`` good checks before they get traffic again) and the configs the apps ran
with, which a dry run (``reconciler plan --state-dir``) plans against instead of an empty manager.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from prometheus_client.registry import Collector

from reconciler.capabilities.base import Capability, Observed
from reconciler.capabilities.context import CapabilityContext
from reconciler.capabilities.tcp_proxy_metrics import ProxyCollector
from reconciler.errors import ApplyError
from reconciler.model.observed import ProxyAppFacts, ProxyTargetFacts, TCPProxyFacts
from reconciler.model.proxy_config import AppConfig, AppSettings, CheckSettings
from reconciler.model.tcp_proxy import TCPProxy
from reconciler.model.values import format_host_port
from reconciler.planning.plan import TargetPlan
from reconciler.planning.tcp_proxy import ProxyMember, apply_changes, plan_tcp_proxy
from reconciler.proxy.manager import ProxyManager

APP_TARGET = "app:"


def summary(app: ProxyAppFacts) -> dict[str, Any]:
    """What the status document shows of an app. Counters change with every connection; they belong in
    /metrics. Status (committed to git) keeps what only changes when the world does."""
    shown: dict[str, Any] = {
        "listen": list(app.listen),
        "targets": [
            {"address": t.address, "weight": t.weight, "health": t.health, "resolved": t.resolved, "reason": t.reason}
            for t in app.targets
        ],
    }
    if app.listen_errors:  # ports it should listen on and cannot, with the kernel's reason
        shown["listenErrors"] = dict(sorted(app.listen_errors.items()))
    if app.check_problem:  # this machine's own trouble (out of descriptors, say): the targets keep their health
        shown["checksNotMade"] = app.check_problem
    return shown


def _without_targets(apps: Mapping[str, ProxyAppFacts]) -> tuple[str, str] | None:
    """Apps whose every target is down or drained: the resource is Degraded, naming them; else apps whose checks
    this machine cannot make: Degraded as the agent's own problem."""
    empty = [app for key, app in sorted(apps.items()) if app.targets and not any(t.usable for t in app.targets)]
    if not empty:
        unchecked = [f"app {app.key}: {app.check_problem}" for _, app in sorted(apps.items()) if app.check_problem]
        if unchecked:
            message = "health checks cannot be made on this machine (its own problem, not the targets')"
            return "ChecksNotMade", f"{message}: {'; '.join(unchecked)}"
        return None
    described = []
    for app in empty:
        down = [f"{t.address} ({t.reason or t.health})" for t in app.targets if t.health == "down"]
        drained = [t.address for t in app.targets if t.weight == 0 and t.health != "down"]
        parts = ([f"down: {', '.join(down)}"] if down else []) + ([f"drained: {', '.join(drained)}"] if drained else [])
        described.append(f"app {app.key} has no healthy target ({'; '.join(parts)})")
    return "NoHealthyTarget", "; ".join(described)


def config_to_json(config: AppConfig) -> dict[str, Any]:
    """An app config as JSON values (bytes of send/expect as latin-1 text, which maps each byte to one char)."""
    checks = None
    if config.checks is not None:
        checks = {
            **asdict(config.checks),
            "send": config.checks.send.decode("latin-1") if config.checks.send is not None else None,
            "expect": config.checks.expect.decode("latin-1") if config.checks.expect is not None else None,
        }
    return {
        "listen": [list(pair) for pair in config.listen],
        "targets": [list(pair) for pair in config.targets],
        "settings": asdict(config.settings),
        "checks": checks,
    }


def config_from_json(key: str, data: Mapping[str, Any]) -> AppConfig:
    checks = data.get("checks")
    return AppConfig(
        key,
        tuple((str(h), int(p)) for h, p in data["listen"]),
        tuple((str(a), int(w)) for a, w in data["targets"]),
        AppSettings(**data["settings"]),
        None
        if checks is None
        else CheckSettings(
            **{
                **checks,
                "send": checks["send"].encode("latin-1") if checks.get("send") is not None else None,
                "expect": checks["expect"].encode("latin-1") if checks.get("expect") is not None else None,
            }
        ),
    )


def _as_facts(configs: Mapping[str, AppConfig]) -> dict[str, ProxyAppFacts]:
    """Recorded configs as the facts of apps that run them (health unknown: nothing was checked)."""
    return {
        key: ProxyAppFacts(
            key=key,
            listen=tuple(sorted(format_host_port(h, p) for h, p in config.listen)),
            targets=tuple(ProxyTargetFacts(a, w, "unknown", None) for a, w in config.targets),
            settings=config.settings,
            checks=config.checks,
        )
        for key, config in configs.items()
    }


class TCPProxyCapability(Capability[TCPProxy, TCPProxyFacts, ProxyMember]):
    resource_type = TCPProxy
    state_version = 1

    def __init__(self, manager: ProxyManager, *, replay: bool = False) -> None:
        self.manager = manager
        self.replay = replay  # dry run: observe what the state file recorded; never record anything new
        self.recorded: dict[str, AppConfig] = {}

    @classmethod
    def from_context(cls, context: CapabilityContext) -> TCPProxyCapability:
        settings = context.settings
        return cls(
            ProxyManager(
                drain=settings.shutdown_timeout.total_seconds() / 2,
                workers=settings.tcp_proxy_workers(context.cpus),
                resolver=context.resolver,
                connector=context.connector,
                clock=context.clock,
            ),
            replay=settings.dry_run,
        )

    def observe_interval(self, resource: TCPProxy) -> timedelta | None:
        return resource.spec.healthCheck.interval * 5  # status follows health; checks run on their own clock

    async def observe(self, resource: TCPProxy) -> Observed[TCPProxyFacts]:
        prefix = f"{resource.metadata.name}/"
        snapshot = _as_facts(self.recorded) if self.replay else self.manager.snapshot()
        running = {key: app for key, app in snapshot.items() if key.startswith(prefix)}
        summaries = {key: summary(app) for key, app in running.items()}
        return Observed(TCPProxyFacts(running), {"apps": summaries}, degraded=_without_targets(running))

    def plan(self, resource: TCPProxy, facts: TCPProxyFacts, *, now: float) -> Sequence[TargetPlan[ProxyMember]]:
        return plan_tcp_proxy(resource, facts)

    async def apply(self, resource: TCPProxy, target: TargetPlan[ProxyMember]) -> None:
        key = target.target.removeprefix(APP_TARGET)
        await self.manager.set_app(key, apply_changes(key, self.manager.config(key), target.changes))

    async def forget(self, name: str) -> None:
        await self.manager.apply({}, scope=f"{name}/")

    async def close(self, deadline: float) -> None:
        """Established connections get what is left until ``deadline`` to finish; then the workers are ended."""
        if not await self.manager.close_by(deadline):
            raise ApplyError("proxied connections did not drain in time: the proxy workers were ended")

    def saved(self) -> Mapping[str, Any] | None:
        if self.replay:
            down = {k: sorted(v) for k, v in self.manager.known_down.items()}
            return {"targetsDown": down, "apps": {k: config_to_json(c) for k, c in self.recorded.items()}}
        running = {key: config for key in self.manager.running if (config := self.manager.config(key)) is not None}
        return {"targetsDown": self.manager.health(), "apps": {k: config_to_json(c) for k, c in running.items()}}

    def restore(self, state: Mapping[str, Any]) -> None:
        down = state.get("targetsDown", {})
        if isinstance(down, dict):
            self.manager.known_down = {str(k): {str(a) for a in v} for k, v in down.items() if isinstance(v, list)}
        apps = state.get("apps", {})
        if isinstance(apps, dict):
            self.recorded = {}
            for key, config in apps.items():
                with contextlib.suppress(KeyError, TypeError, ValueError):  # a record we cannot read is not kept
                    self.recorded[str(key)] = config_from_json(str(key), config)

    def collectors(self) -> Sequence[Collector]:
        return (ProxyCollector(self.manager.snapshot, self.manager.worker_restarts),)
