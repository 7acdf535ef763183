"""The TCPProxy capability: runs the apps of every TCPProxy resource in its own proxy manager.

Observing reads what the manager runs (typed ``ProxyAppFacts``); applying carries out the gated plan's changes on
the app's running config. Each resource's state keeps the targets of its apps that were down at the last pass
(so that after a restart they need ``rise`` good checks before they get traffic again) and the configs its apps
ran with, which a dry run (``reconciler plan --state-dir``) plans against instead of an empty manager.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
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
from reconciler.planning.tcp_proxy import AppTarget, ProxyMember, app_key, apply_changes, plan_tcp_proxy
from reconciler.proxy.manager import ProxyManager


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


def _recorded(state: ProxyState) -> dict[str, AppConfig]:
    """The configs a resource's apps ran with, as recorded (a record that cannot be read is left out)."""
    configs = {}
    for key, data in state.apps.items():
        try:
            configs[key] = config_from_json(key, data)
        except (KeyError, TypeError, ValueError):
            continue
    return configs


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


@dataclass
class ProxyState:
    """One TCPProxy's apps, by app key: the addresses of targets down at the last pass, the configs they ran."""

    targetsDown: dict[str, list[str]] = field(default_factory=dict)  # noqa: N815 - the state file's names
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)  # config_to_json of each running app


class TCPProxyCapability(Capability[TCPProxy, TCPProxyFacts, ProxyMember, ProxyState]):
    resource_type = TCPProxy
    state_type = ProxyState
    state_version = 2

    def __init__(self, manager: ProxyManager, *, replay: bool = False) -> None:
        self.manager = manager
        self.replay = replay  # dry run: observe what the state file recorded; never record anything new

    @classmethod
    def upgrade_state(cls, version: int, part: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Version 1 kept every app of every resource together, by app key (``<resource>/<app>``)."""
        if version != 1:
            return None
        resources: dict[str, dict[str, dict[str, Any]]] = {}
        for field_name in ("targetsDown", "apps"):
            found = part.get(field_name, {})
            for key, value in found.items() if isinstance(found, dict) else ():
                name = str(key).split("/", 1)[0]
                resources.setdefault(name, {"targetsDown": {}, "apps": {}})[field_name][str(key)] = value
        return resources

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

    async def observe(self, resource: TCPProxy, state: ProxyState) -> Observed[TCPProxyFacts]:
        prefix = f"{resource.metadata.name}/"
        snapshot = _as_facts(_recorded(state)) if self.replay else self.manager.snapshot()
        running = {key: app for key, app in snapshot.items() if key.startswith(prefix)}
        if not self.replay:
            self._record(resource, state)
        summaries = {key: summary(app) for key, app in running.items()}
        return Observed(TCPProxyFacts(running), {"apps": summaries}, degraded=_without_targets(running))

    def _record(self, resource: TCPProxy, state: ProxyState) -> None:
        """What runs now; an app not started yet keeps what was recorded for it (a restart: its first apply)."""
        keys = {app_key(resource.metadata.name, app.name) for app in resource.spec.apps}
        down = self.manager.health()
        configs = {key: config for key in keys if (config := self.manager.config(key)) is not None}
        state.targetsDown = {
            key: down.get(key, []) if key in configs else state.targetsDown[key]
            for key in sorted(keys)
            if (key in configs and down.get(key)) or (key not in configs and key in state.targetsDown)
        }
        state.apps = {key: config_to_json(config) for key, config in sorted(configs.items())}

    def plan(
        self, resource: TCPProxy, facts: TCPProxyFacts, state: ProxyState, *, now: float
    ) -> Sequence[TargetPlan[ProxyMember]]:
        return plan_tcp_proxy(resource, facts)

    async def apply(self, resource: TCPProxy, target: TargetPlan[ProxyMember], state: ProxyState) -> None:
        if not isinstance(target.target, AppTarget):
            raise TypeError(f"a TCPProxy has no target {target.target}")
        key = target.target.key
        if self.manager.config(key) is None and key in state.targetsDown:  # down when the last process stopped
            self.manager.known_down[key] = set(state.targetsDown[key])
        await self.manager.set_app(key, apply_changes(key, self.manager.config(key), target.changes))

    async def forget(self, name: str, state: ProxyState | None) -> None:
        await self.manager.apply({}, scope=f"{name}/")

    async def close(self, deadline: float) -> None:
        """Established connections get what is left until ``deadline`` to finish; then the workers are ended."""
        if not await self.manager.close_by(deadline):
            raise ApplyError("proxied connections did not drain in time: the proxy workers were ended")

    def collectors(self) -> Sequence[Collector]:
        return (ProxyCollector(self.manager.snapshot, self.manager.worker_restarts),)
