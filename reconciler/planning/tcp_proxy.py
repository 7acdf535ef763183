"""TCPProxy planning (pure): what each app should run, and the diff against what runs.

An app's key is ``<resource>/<app>``. Its target plan lists listeners and targets to add, remove or re-weight;
the size the safety gate compares with is the number of targets running now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model.tcp_proxy import TCPProxy
from reconciler.model.values import ListenAddress
from reconciler.planning.plan import Action, Change, TargetPlan


@dataclass(frozen=True, slots=True)
class DesiredApp:
    key: str
    listen: tuple[tuple[str, int], ...]
    targets: tuple[tuple[str, int], ...]  # (host:port, weight)


def app_key(resource: str, app: str) -> str:
    return f"{resource}/{app}"


def expand(address: ListenAddress) -> list[tuple[str, int]]:
    return [(str(address.host), port) for port in address.ports]


def desired_apps(proxy: TCPProxy) -> dict[str, DesiredApp]:
    apps = {}
    for app in proxy.spec.apps:
        key = app_key(proxy.metadata.name, app.name)
        listen = tuple(sorted({pair for address in app.listen for pair in expand(address)}))
        targets = tuple((str(t.address), t.weight) for t in app.targets)
        apps[key] = DesiredApp(key, listen, targets)
    return apps


def plan_tcp_proxy(proxy: TCPProxy, running: Mapping[str, Any]) -> list[TargetPlan]:
    """``running`` is the proxy manager's snapshot for this resource's apps (key -> listen, targets)."""
    plans = []
    desired = desired_apps(proxy)
    for key in sorted(set(desired) | set(running)):
        want = desired.get(key)
        have = running.get(key, {"listen": [], "targets": []})
        changes: list[Change] = []
        wanted_listen = {f"{h}:{p}" for h, p in want.listen} if want else set()
        have_listen = set(have["listen"])
        changes += [Change(f"listen {a}", Action.ADD, after=a) for a in sorted(wanted_listen - have_listen)]
        changes += [Change(f"listen {a}", Action.REMOVE, before=a) for a in sorted(have_listen - wanted_listen)]
        wanted_targets = dict(want.targets) if want else {}
        have_targets = {t["address"]: t["weight"] for t in have["targets"]}
        for address in sorted(set(wanted_targets) | set(have_targets)):
            before, after = have_targets.get(address), wanted_targets.get(address)
            if before is None:
                changes.append(Change(f"target {address}", Action.ADD, after=f"weight {after}"))
            elif after is None:
                changes.append(Change(f"target {address}", Action.REMOVE, before=f"weight {before}"))
            elif before != after:
                changes.append(Change(f"target {address}", Action.CHANGE, f"weight {before}", f"weight {after}"))
        plans.append(TargetPlan(TCPProxy.KIND, proxy.metadata.name, f"app:{key}", len(have_targets), tuple(changes)))
    return plans
