"""TCPProxy planning (pure): what each app should run, the diff against what runs, and the config a plan leads to.

An app's key is ``<resource>/<app>``. Its target plan lists listeners and targets to add, remove or re-weight, and
the app's settings when they differ; the size the safety gate compares with is the number of targets running now.
The applier carries out exactly those changes (``apply_changes``), so what runs is what the gate allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta

from reconciler.model.observed import ProxyAppFacts, TCPProxyFacts
from reconciler.model.proxy_config import AppConfig, AppSettings, AppTuning, CheckSettings
from reconciler.model.tcp_proxy import TCPProxy
from reconciler.model.values import format_host_port, host_and_port
from reconciler.planning.plan import Action, Change, Target, TargetPlan


@dataclass(frozen=True, slots=True, order=True)
class ListenOn:
    host: str
    port: int

    def __str__(self) -> str:
        return format_host_port(self.host, self.port)


@dataclass(frozen=True, slots=True)
class TargetWeight:
    address: str
    weight: int

    def __str__(self) -> str:
        return f"weight {self.weight}"


@dataclass(frozen=True, slots=True)
class AppTarget(Target):
    """One app the proxy manager runs, by its key."""

    key: str

    def __str__(self) -> str:
        return f"app:{self.key}"


ProxyMember = ListenOn | TargetWeight | AppTuning
ProxyChange = Change[ProxyMember]
ProxyPlan = TargetPlan[ProxyMember]


def app_key(resource: str, app: str) -> str:
    return f"{resource}/{app}"


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def tuning(proxy: TCPProxy, balance: str | None = None) -> AppTuning:
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
    settings = AppSettings(
        balance=spec.balance,
        connect_timeout=spec.connectTimeout.total_seconds(),
        retries=spec.retries,
        idle_timeout=_seconds(spec.idleTimeout),
        max_connections=spec.maxConnections,
        eject_after=spec.outlierDetection.consecutiveFailures,
        eject_for=spec.outlierDetection.ejectFor.total_seconds(),
    )
    return AppTuning(settings, checks)


def desired_apps(proxy: TCPProxy) -> dict[str, AppConfig]:
    """Every app of the resource as the proxy manager should run it."""
    common = tuning(proxy)
    apps = {}
    for app in proxy.spec.apps:
        key = app_key(proxy.metadata.name, app.name)
        listen = tuple(sorted({(str(address.host), port) for address in app.listen for port in address.ports}))
        targets = tuple((str(t.address), t.weight) for t in app.targets)
        settings = replace(common.settings, balance=app.balance) if app.balance else common.settings
        apps[key] = AppConfig(key, listen, targets, settings, common.checks)
    return apps


def _running_tuning(app: ProxyAppFacts) -> AppTuning:
    return AppTuning(app.settings, app.checks)


def plan_app(
    key: str, want: AppConfig | None, have: ProxyAppFacts | None, *, kind: str = TCPProxy.KIND, name: str = ""
) -> ProxyPlan | None:
    changes: list[ProxyChange] = []
    wanted_listen = {ListenOn(h, p) for h, p in want.listen} if want else set()
    have_listen = {ListenOn(*host_and_port(a)) for a in have.listen} if have else set()
    changes += [Change(f"listen {a}", Action.ADD, after=a) for a in sorted(wanted_listen - have_listen)]
    changes += [Change(f"listen {a}", Action.REMOVE, before=a) for a in sorted(have_listen - wanted_listen)]
    wanted_targets = dict(want.targets) if want else {}
    have_targets = {t.address: t.weight for t in have.targets} if have else {}
    for address in sorted(set(wanted_targets) | set(have_targets)):
        before, after = have_targets.get(address), wanted_targets.get(address)
        key_ = f"target {address}"
        if before is None and after is not None:
            changes.append(Change(key_, Action.ADD, after=TargetWeight(address, after)))
        elif after is None and before is not None:
            changes.append(Change(key_, Action.REMOVE, before=TargetWeight(address, before)))
        elif before != after and before is not None and after is not None:
            changes.append(Change(key_, Action.CHANGE, TargetWeight(address, before), TargetWeight(address, after)))
    wanted_tuning = AppTuning(want.settings, want.checks) if want else None
    have_tuning = _running_tuning(have) if have else None
    if wanted_tuning != have_tuning:
        action = Action.ADD if have_tuning is None else Action.REMOVE if wanted_tuning is None else Action.CHANGE
        changes.append(Change("settings", action, have_tuning, wanted_tuning, member=False))
    if want is None and have is None:
        return None
    return TargetPlan(kind, name or key.split("/", 1)[0], AppTarget(key), len(have_targets), tuple(changes))


def plan_tcp_proxy(proxy: TCPProxy, facts: TCPProxyFacts) -> list[ProxyPlan]:
    """One target plan per app that is desired or runs (``facts`` holds this resource's running apps)."""
    desired = desired_apps(proxy)
    plans = [plan_app(key, desired.get(key), facts.apps.get(key)) for key in sorted(set(desired) | set(facts.apps))]
    return [p for p in plans if p is not None]


def apply_changes(key: str, current: AppConfig | None, changes: Iterable[ProxyChange]) -> AppConfig | None:
    """The app config after carrying out ``changes`` on ``current``; None when the plan removes the app."""
    listen = set(current.listen) if current else set()
    targets: dict[str, int] = dict(current.targets) if current else {}
    now = AppTuning(current.settings, current.checks) if current else None
    for change in changes:
        match change.after if change.action is not Action.REMOVE else change.before:
            case ListenOn(host=host, port=port):
                if change.action is Action.REMOVE:
                    listen.discard((host, port))
                else:
                    listen.add((host, port))
            case TargetWeight(address=address, weight=weight):
                if change.action is Action.REMOVE:
                    targets.pop(address, None)
                else:
                    targets[address] = weight
            case AppTuning() as planned:
                now = None if change.action is Action.REMOVE else planned
    if now is None:
        return None
    return AppConfig(key, tuple(sorted(listen)), tuple(targets.items()), now.settings, now.checks)
