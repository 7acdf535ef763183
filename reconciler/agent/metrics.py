"""The agent's Prometheus metrics, in a registry of its own (tests can run several agents in one process)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from reconciler.status.conditions import Condition

ERROR_COMPONENTS = ("git", "validation", "signature", "source", "observer", "applier", "internal", "status", "state")


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
        self.observe_seconds = Histogram(
            "reconciler_observe_duration_seconds",
            "Duration of one observation of one resource, by kind.",
            ["kind"],
            registry=self.registry,
            buckets=(0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30),
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
        for component in ERROR_COMPONENTS:  # at 0 from the start: a rate over "no errors yet" is 0, not absent
            self.errors.labels(component)
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
        self.status_publish_errors = Counter(
            "reconciler_status_publish_errors_total",
            "Status publications that failed (any cause); /status shows the last error.",
            registry=self.registry,
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
        return self.render(self.collect())

    def collect(self) -> list[Metric]:
        """Every collector's samples, as they are now (on the loop: collectors read the agent's state)."""
        return list(self.registry.collect())

    @staticmethod
    def render(families: list[Metric]) -> bytes:
        """The text format of collected samples: no shared state, so it may run in a thread (at 100,000
        egress destinations it takes ~1.5 s)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collected(families))
        return generate_latest(registry)

    def register(self, collector: Collector) -> None:
        """A capability's collector, read at scrape time."""
        self.registry.register(collector)


class _Collected(Collector):
    """Samples already collected, served as a collector of their own."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)
