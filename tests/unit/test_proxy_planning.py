"""Balancers and TCPProxy planning: pure behaviour, no sockets."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.model import TCPProxy
from reconciler.planning.plan import Action
from reconciler.planning.tcp_proxy import desired_apps, plan_tcp_proxy
from reconciler.proxy.app import AppSettings
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


def test_port_ranges_expand_and_a_fresh_plan_adds_everything() -> None:
    """A range listens on each port; with nothing running, every listener and target is an addition."""
    proxy = TCPProxy.model_validate(PROXY)
    [app] = desired_apps(proxy).values()
    assert app.listen == (("0.0.0.0", 5300), ("0.0.0.0", 5301), ("0.0.0.0", 5302))
    [plan] = plan_tcp_proxy(proxy, {})
    assert plan.target == "app:apps/web"
    assert [(c.action, c.key) for c in plan.changes] == [
        (Action.ADD, "listen 0.0.0.0:5300"),
        (Action.ADD, "listen 0.0.0.0:5301"),
        (Action.ADD, "listen 0.0.0.0:5302"),
        (Action.ADD, "target 192.0.2.10:7001"),
        (Action.ADD, "target 192.0.2.11:7001"),
    ]


def test_a_converged_proxy_plans_nothing_and_changes_are_precise() -> None:
    """Running what is desired: no change. A dropped port, a new weight and a removed app are named."""
    proxy = TCPProxy.model_validate(PROXY)
    running: dict[str, Any] = {
        "apps/web": {
            "listen": ["0.0.0.0:5300", "0.0.0.0:5301", "0.0.0.0:5302", "0.0.0.0:5303"],
            "targets": [{"address": "192.0.2.10:7001", "weight": 1}, {"address": "192.0.2.11:7001", "weight": 1}],
        },
        "apps/old": {"listen": ["0.0.0.0:6000"], "targets": [{"address": "192.0.2.99:1", "weight": 1}]},
    }
    plans = {p.target: p for p in plan_tcp_proxy(proxy, running)}
    assert [(c.action, c.key, c.before, c.after) for c in plans["app:apps/web"].changes] == [
        (Action.REMOVE, "listen 0.0.0.0:5303", "0.0.0.0:5303", None),
        (Action.CHANGE, "target 192.0.2.11:7001", "weight 1", "weight 3"),
    ]
    assert {c.action for c in plans["app:apps/old"].changes} == {Action.REMOVE}
    exact = {**running, "apps/web": {**running["apps/web"], "listen": running["apps/web"]["listen"][:3]}}
    exact["apps/web"]["targets"] = [
        {"address": "192.0.2.10:7001", "weight": 1},
        {"address": "192.0.2.11:7001", "weight": 3},
    ]
    del exact["apps/old"]
    assert all(not p.changes for p in plan_tcp_proxy(proxy, exact))


def test_per_worker_limits_add_up_to_the_app_limit() -> None:
    """Each worker process gets its share of maxConnections, rounded up; nothing else changes."""
    spec = AppSpec((("127.0.0.1", 1),), AppSettings(max_connections=10), (TargetSpec("127.0.0.1:2", 1, True, None),))
    shared = per_worker({"a": spec}, 3)["a"]
    assert shared.settings.max_connections == 4
    assert shared.listen == spec.listen
    assert shared.targets == spec.targets
    assert per_worker({"a": spec}, 1)["a"].settings.max_connections == 10
