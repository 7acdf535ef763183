"""Balancers and TCPProxy planning: pure behaviour, no sockets."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.model import TCPProxy
from reconciler.model.observed import ProxyAppFacts, ProxyTargetFacts, TCPProxyFacts
from reconciler.model.proxy_config import AppConfig, AppSettings, AppTuning
from reconciler.planning.plan import Action
from reconciler.planning.tcp_proxy import ListenOn, TargetWeight, apply_changes, desired_apps, plan_tcp_proxy
from reconciler.proxy.backends import Backend, LeastConnections, Random, RoundRobin
from reconciler.proxy.plane import AppSpec, TargetSpec
from reconciler.proxy.workers import per_worker

PROXY = {
    "apiVersion": "reconciler/v1",
    "kind": "TCPProxy",
    "metadata": {"name": "apps"},
    "spec": {
        "apps": [
            {
                "name": "web",
                "listen": ["0.0.0.0:5300-5302"],
                "targets": ["192.0.2.10:7001", {"address": "192.0.2.11:7001", "weight": 3}],
            }
        ]
    },
}


def _backends(*weights: int) -> list[Backend]:
    return [Backend(f"b{i}", weight=w, resolved=("127.0.0.1", 1000 + i)) for i, w in enumerate(weights)]


def test_round_robin_is_smooth_and_weighted() -> None:
    """Equal weights take turns; 5:1:1 interleaves like nginx (a a b a c a a)."""
    rr = RoundRobin()
    equal = _backends(1, 1, 1)
    assert [rr.pick(equal, frozenset()).address for _ in range(6)] == ["b0", "b1", "b2", "b0", "b1", "b2"]  # type: ignore[union-attr]
    weighted = _backends(5, 1, 1)
    picks = [rr.pick(weighted, frozenset()).address for _ in range(7)]  # type: ignore[union-attr]
    assert picks == ["b0", "b0", "b1", "b0", "b2", "b0", "b0"]


def test_unusable_and_excluded_backends_are_never_picked() -> None:
    """Down, weight 0, unresolved, ejected and already-tried backends are skipped; nothing left gives None."""
    backends = _backends(1, 1, 0, 1, 1)
    backends[0].up = False
    backends[3].resolved = None
    backends[4].ejected = True
    for balancer in (RoundRobin(), Random(), LeastConnections()):
        picked = {balancer.pick(backends, frozenset()).address for _ in range(8)}  # type: ignore[union-attr]
        assert picked == {"b1"}
        assert balancer.pick(backends, frozenset({id(backends[1])})) is None


def test_outlier_detection_defaults_and_bounds() -> None:
    """On by default (5 failed connects in a row, 30 s out); 0 turns it off; negative counts are refused."""
    spec = TCPProxy.model_validate(PROXY).spec.outlierDetection
    assert (spec.consecutiveFailures, spec.ejectFor.total_seconds()) == (5, 30.0)
    assert (AppSettings().eject_after, AppSettings().eject_for) == (5, 30.0)

    def with_detection(detection: dict[str, Any]) -> dict[str, Any]:
        document = copy.deepcopy(PROXY)
        document["spec"]["outlierDetection"] = detection  # type: ignore[index]
        return document

    off = TCPProxy.model_validate(with_detection({"consecutiveFailures": 0}))
    assert off.spec.outlierDetection.consecutiveFailures == 0
    with pytest.raises(ValidationError, match="consecutiveFailures"):
        TCPProxy.model_validate(with_detection({"consecutiveFailures": -1}))


def test_random_follows_weights_and_least_connections_prefers_idle() -> None:
    """Random picks in proportion to weight; least-connections takes the least busy per weight."""
    backends = _backends(1, 3)
    counts = {"b0": 0, "b1": 0}
    chooser = Random(random.Random(7))
    for _ in range(4000):
        counts[chooser.pick(backends, frozenset()).address] += 1  # type: ignore[union-attr]
    assert 2.5 < counts["b1"] / counts["b0"] < 3.5
    backends[1].active = 5
    assert LeastConnections().pick(backends, frozenset()).address == "b0"  # type: ignore[union-attr]


def _running(config: AppConfig, **changes: Any) -> ProxyAppFacts:
    """Facts of an app that runs ``config`` (with ``changes`` to its fields)."""
    fields: dict[str, Any] = {
        "listen": tuple(f"{h}:{p}" for h, p in config.listen),
        "targets": tuple(ProxyTargetFacts(a, w, health="up", resolved=a) for a, w in config.targets),
        "settings": config.settings,
        "checks": config.checks,
    }
    return ProxyAppFacts(key=config.key, **{**fields, **changes})


def test_port_ranges_expand_and_a_fresh_plan_adds_everything() -> None:
    """A range listens on each port; with nothing running, every listener, target and the settings are added."""
    proxy = TCPProxy.model_validate(PROXY)
    [app] = desired_apps(proxy).values()
    assert app.listen == (("0.0.0.0", 5300), ("0.0.0.0", 5301), ("0.0.0.0", 5302))
    [plan] = plan_tcp_proxy(proxy, TCPProxyFacts())
    assert str(plan.target) == "app:apps/web"
    assert [(c.action, c.key) for c in plan.changes] == [
        (Action.ADD, "listen 0.0.0.0:5300"),
        (Action.ADD, "listen 0.0.0.0:5301"),
        (Action.ADD, "listen 0.0.0.0:5302"),
        (Action.ADD, "settings"),
        (Action.ADD, "target 192.0.2.10:7001"),
        (Action.ADD, "target 192.0.2.11:7001"),
    ]
    assert plan.changes[0].after == ListenOn("0.0.0.0", 5300)
    assert plan.changes[4].after == TargetWeight("192.0.2.10:7001", 1)


def test_carrying_out_a_plan_gives_exactly_the_desired_app() -> None:
    """apply_changes on what runs with the gated plan's changes is the desired config; a removal plan stops it."""
    proxy = TCPProxy.model_validate(PROXY)
    [want] = desired_apps(proxy).values()
    [plan] = plan_tcp_proxy(proxy, TCPProxyFacts())
    assert apply_changes(want.key, None, plan.changes) == want
    old = AppConfig("apps/old", (("0.0.0.0", 6000),), (("192.0.2.99:1", 1),))
    plans = {str(p.target): p for p in plan_tcp_proxy(proxy, TCPProxyFacts({"apps/old": _running(old)}))}
    assert apply_changes("apps/old", old, plans["app:apps/old"].changes) is None
    # only what the plan says changes: a listener the plan does not name stays
    partial = [c for c in plan.changes if c.key != "listen 0.0.0.0:5302"]
    carried = apply_changes(want.key, None, partial)
    assert carried is not None
    assert ("0.0.0.0", 5302) not in carried.listen


def test_a_converged_proxy_plans_nothing_and_changes_are_precise() -> None:
    """Running what is desired: no change. A dropped port, a new weight, new settings and a removed app are named."""
    proxy = TCPProxy.model_validate(PROXY)
    [want] = desired_apps(proxy).values()
    web = _running(
        want,
        listen=("0.0.0.0:5300", "0.0.0.0:5301", "0.0.0.0:5302", "0.0.0.0:5303"),
        targets=(
            ProxyTargetFacts("192.0.2.10:7001", 1, "up", None),
            ProxyTargetFacts("192.0.2.11:7001", 1, "up", None),
        ),
        settings=AppSettings(retries=5),
    )
    old = _running(AppConfig("apps/old", (("0.0.0.0", 6000),), (("192.0.2.99:1", 1),)))
    plans = {str(p.target): p for p in plan_tcp_proxy(proxy, TCPProxyFacts({"apps/web": web, "apps/old": old}))}
    shown = [(c.action, c.key, c.shown_before, c.shown_after) for c in plans["app:apps/web"].changes]
    assert shown[0] == (Action.REMOVE, "listen 0.0.0.0:5303", "0.0.0.0:5303", None)
    assert shown[2] == (Action.CHANGE, "target 192.0.2.11:7001", "weight 1", "weight 3")
    settings = plans["app:apps/web"].changes[1]
    assert (settings.action, settings.member) == (Action.CHANGE, False)
    assert isinstance(settings.after, AppTuning)
    assert settings.after.settings.retries == 2
    assert plans["app:apps/web"].destructive == 2  # the settings change is not a member the gate counts
    assert {c.action for c in plans["app:apps/old"].changes} == {Action.REMOVE}
    assert all(not p.changes for p in plan_tcp_proxy(proxy, TCPProxyFacts({"apps/web": _running(want)})))


def test_per_worker_limits_add_up_to_the_app_limit() -> None:
    """Each worker process gets its share of maxConnections, rounded up; nothing else changes."""
    spec = AppSpec((("127.0.0.1", 1),), AppSettings(max_connections=10), (TargetSpec("127.0.0.1:2", 1, True, None),))
    shared = per_worker({"a": spec}, 3)["a"]
    assert shared.settings.max_connections == 4
    assert shared.listen == spec.listen
    assert shared.targets == spec.targets
    assert per_worker({"a": spec}, 1)["a"].settings.max_connections == 10
