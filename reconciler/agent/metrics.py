"""The agent's Prometheus metrics, in a registry of its own (tests can run several agents in one process)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reconciler.status.conditions import Condition


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconcile_seconds = Histogram(
            "reconciler_reconcile_duration_seconds",
            "Duration of one reconcile, by outcome (applied, unchanged, stalled, degraded).",
            ["outcome"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.last_sync = Gauge(
            "reconciler_last_successful_sync_timestamp_seconds",
            "When the desired-state branch was last fetched successfully.",
            registry=self.registry,
        )
        self.revision_info = Gauge(
            "reconciler_revision_info",
            "The desired-state revision in force (value 1), with its branch.",
            ["revision", "branch"],
            registry=self.registry,
        )
        self.condition = Gauge(
            "reconciler_resource_condition",
            "Conditions of each resource (1 = True, 0 = False, -1 = Unknown).",
            ["kind", "name", "type"],
            registry=self.registry,
        )
        self.errors = Counter("reconciler_errors_total", "Errors by component.", ["component"], registry=self.registry)
        self.git_fetch = Counter(
            "reconciler_git_fetch_total",
            "Fetches of the desired-state branch, by result.",
            ["result"],
            registry=self.registry,
        )
        self.git_backoff = Gauge(
            "reconciler_git_fetch_backoff_seconds",
            "Delay before the next fetch after failures (0 when fetching normally).",
            registry=self.registry,
        )
        self.status_publish = Counter(
            "reconciler_status_publish_total", "Status publications, by result.", ["result"], registry=self.registry
        )
        self.webhook = Counter(
            "reconciler_webhook_requests_total", "Git webhook requests, by result.", ["result"], registry=self.registry
        )
        self._revision: tuple[str, str] | None = None

    def set_revision(self, revision: str, branch: str) -> None:
        if self._revision == (revision, branch):
            return
        if self._revision is not None:
            self.revision_info.remove(*self._revision)
        self.revision_info.labels(revision, branch).set(1)
        self._revision = (revision, branch)

    def set_conditions(self, kind: str, name: str, conditions: tuple[Condition, ...]) -> None:
        values = {"True": 1, "False": 0, "Unknown": -1}
        for condition in conditions:
            self.condition.labels(kind, name, condition.type).set(values[condition.status])

    def forget_resource(self, kind: str, name: str) -> None:
        for condition_type in ("Ready", "Degraded", "Stalled"):
            with contextlib.suppress(KeyError):
                self.condition.remove(kind, name, condition_type)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def watch_proxies(self, snapshot: Callable[[], Mapping[str, Any]], restarts: Callable[[], int]) -> None:
        """Proxy counters, target health and worker restarts, read from the proxy manager at scrape time."""
        self.registry.register(_ProxyCollector(snapshot, restarts))


class _ProxyCollector(Collector):
    def __init__(self, snapshot: Callable[[], Mapping[str, Any]], restarts: Callable[[], int]) -> None:
        self.snapshot = snapshot
        self.restarts = restarts

    def collect(self) -> Iterator[Metric]:
        apps = self.snapshot()
        counters = {
            "connections": ("reconciler_proxy_connections", "Connections accepted."),
            "connect_failures": ("reconciler_proxy_connect_failures", "Failed connects to targets."),
            "retries": ("reconciler_proxy_retries", "Connects retried on another target."),
            "no_backend": ("reconciler_proxy_no_backend", "Clients turned away with no target left."),
            "ejections": ("reconciler_proxy_ejections", "Targets taken out for failed connects in a row."),
        }
        families = {key: CounterMetricFamily(name, help_, labels=["app"]) for key, (name, help_) in counters.items()}
        transferred = CounterMetricFamily(
            "reconciler_proxy_bytes", "Bytes relayed (in: client to target).", labels=["app", "direction"]
        )
        active = GaugeMetricFamily("reconciler_proxy_active_connections", "Open connections.", labels=["app"])
        at_limit = GaugeMetricFamily(
            "reconciler_proxy_at_limit", "1 while the app stops accepting at maxConnections.", labels=["app"]
        )
        up = GaugeMetricFamily("reconciler_proxy_target_up", "Target health (1 up, 0 down).", labels=["app", "target"])
        target_active = GaugeMetricFamily(
            "reconciler_proxy_target_active_connections", "Open connections per target.", labels=["app", "target"]
        )
        ejected = GaugeMetricFamily(
            "reconciler_proxy_target_ejected",
            "1 while a target is taken out for failed connects in a row (outlier detection).",
            labels=["app", "target"],
        )
        for app, state in apps.items():
            stats = state["stats"]
            for key, family in families.items():
                family.add_metric([app], stats[key])
            transferred.add_metric([app, "in"], stats["bytes_in"])
            transferred.add_metric([app, "out"], stats["bytes_out"])
            active.add_metric([app], stats["active"])
            at_limit.add_metric([app], stats["at_limit"])
            for target in state["targets"]:
                up.add_metric([app, target["address"]], 1 if target["up"] else 0)
                target_active.add_metric([app, target["address"]], target["active"])
                ejected.add_metric([app, target["address"]], 1 if target["ejected"] else 0)
        yield from families.values()
        yield from (transferred, active, at_limit, up, target_active, ejected)
        yield CounterMetricFamily(
            "reconciler_proxy_worker_restarts",
            "Proxy worker processes that died and were started again.",
            value=self.restarts(),
        )
