"""The TCPProxy's Prometheus metrics: counters, target health and worker restarts, read from the proxy manager
at scrape time (never one scrape late)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reconciler.model.observed import ProxyAppFacts

_HEALTH = {"up": 1, "down": 0, "unknown": -1}


class ProxyCollector(Collector):
    def __init__(self, snapshot: Callable[[], Mapping[str, ProxyAppFacts]], restarts: Callable[[], int]) -> None:
        self.snapshot = snapshot
        self.restarts = restarts

    def collect(self) -> Iterator[Metric]:
        apps = self.snapshot()
        named = {
            "connections": ("reconciler_proxy_connections", "Connections accepted."),
            "connect_failures": ("reconciler_proxy_connect_failures", "Failed connects to targets."),
            "retries": ("reconciler_proxy_retries", "Connects retried on another target."),
            "no_backend": ("reconciler_proxy_no_backend", "Clients turned away with no target left."),
            "ejections": ("reconciler_proxy_ejections", "Targets taken out for failed connects in a row."),
        }
        families = {key: CounterMetricFamily(name, help_, labels=["app"]) for key, (name, help_) in named.items()}
        transferred = CounterMetricFamily(
            "reconciler_proxy_bytes", "Bytes relayed (in: client to target).", labels=["app", "direction"]
        )
        active = GaugeMetricFamily("reconciler_proxy_active_connections", "Open connections.", labels=["app"])
        at_limit = GaugeMetricFamily(
            "reconciler_proxy_at_limit", "1 while the app stops accepting at maxConnections.", labels=["app"]
        )
        up = GaugeMetricFamily(
            "reconciler_proxy_target_up", "Target health (1 up, 0 down, -1 not checked yet).", labels=["app", "target"]
        )
        target_active = GaugeMetricFamily(
            "reconciler_proxy_target_active_connections", "Open connections per target.", labels=["app", "target"]
        )
        not_made = CounterMetricFamily(
            "reconciler_proxy_checks_not_made",
            "Health checks this machine could not make (out of descriptors, buffers, addresses): its own problem, "
            "not counted against the target.",
            labels=["app"],
        )
        ejected = GaugeMetricFamily(
            "reconciler_proxy_target_ejected",
            "1 while a target is taken out for failed connects in a row (outlier detection).",
            labels=["app", "target"],
        )
        for app, state in apps.items():
            counters = state.counters
            for key, family in families.items():
                family.add_metric([app], getattr(counters, key))
            transferred.add_metric([app, "in"], counters.bytes_in)
            transferred.add_metric([app, "out"], counters.bytes_out)
            active.add_metric([app], counters.active)
            at_limit.add_metric([app], counters.at_limit)
            not_made.add_metric([app], state.checks_not_made)
            for target in state.targets:
                up.add_metric([app, target.address], _HEALTH[target.health])
                target_active.add_metric([app, target.address], target.active)
                ejected.add_metric([app, target.address], 1 if target.ejected else 0)
        yield from families.values()
        yield from (transferred, active, at_limit, not_made, up, target_active, ejected)
        yield CounterMetricFamily(
            "reconciler_proxy_worker_restarts",
            "Proxy worker processes that died and were started again.",
            value=self.restarts(),
        )
