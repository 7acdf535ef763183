"""Publishing the node's status to its status branch: a commit when the status files changed, when the heartbeat
moved, or for the final status at a stop; failures counted, shown and retried, never fatal."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from datetime import UTC, datetime
from typing import Any

from reconciler.agent.metrics import Metrics
from reconciler.settings import AgentSettings
from reconciler.status.documents import NodeStatus, status_files, status_prefix
from reconciler.system.clock import Clock
from reconciler.system.source import StatusPublisher

log = logging.getLogger(__name__)


def _shape(error: str) -> str:
    """An error message without commit ids, which differ in every attempt of the same failure."""
    return re.sub(r"\b[0-9a-f]{40}\b", "<commit>", error)


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path] + b"\0")
    return digest.hexdigest()


class StatusPublishing:
    """The node's status files, committed to the status branch when they change, and how that goes."""

    def __init__(
        self, settings: AgentSettings, publisher: StatusPublisher | None, clock: Clock, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.clock = clock
        self.metrics = metrics
        self.error: str | None = None  # the last failure, until a publish works again
        self.failures = 0  # in a row
        self.last_at: float | None = None
        self._published: str | None = None  # the digest of the files last committed (or found unchanged)
        self._lock = asyncio.Lock()

    def state(self) -> dict[str, Any]:
        """How publishing goes: shown in /status (the status branch cannot say it cannot be reached)."""
        return {
            "ok": self.error is None,
            "error": self.error or "",
            "failuresInARow": self.failures,
            "lastPublished": self.last_at,
        }

    def heartbeat_at(self, now: float) -> float:
        """The last tick of this node's heartbeat grid: every --status-heartbeat, shifted by an offset taken
        from the node's name so that a fleet's heartbeats do not all fall in the same second. On a grid, a
        restart within one period publishes the same heartbeat (no commit)."""
        period = max(1.0, self.settings.status_heartbeat.total_seconds())
        offset = int(hashlib.sha256(self.settings.node.encode()).hexdigest()[:8], 16) % int(period)
        return (now - offset) // period * period + offset

    async def publish(self, status: NodeStatus, *, stopped: bool, final: bool = False) -> str | None:
        """Commit ``status`` if its files changed (``final``: try even if not); the new commit or None."""
        async with self._lock:
            now = self.clock.now()
            # the final status says when the node was last alive to the second, not to the heartbeat's grid
            files = status_files(status, heartbeat=iso(now if stopped else self.heartbeat_at(now)))
            digest = _digest(files)
            if digest == self._published and not final:
                return None
            message = self.settings.status_message.format(
                node=self.settings.node, revision=(status.applied_revision or "-")[:12]
            )
            if self.publisher is None:
                return None
            try:
                commit = await asyncio.to_thread(
                    self.publisher.publish, files, prefix=status_prefix(self.settings.node), message=message
                )
            except Exception as exc:  # any failure to publish is counted and retried; it never stops the agent
                self._failed(str(exc) or type(exc).__name__)
                return None
            if self.error is not None:
                log.info("status publish works again after %d failure(s)", self.failures)
            self.metrics.condition.labels("Node", self.settings.node, "StatusPublished").set(1)
            self.error, self.failures = None, 0
            self.last_at = self.clock.now()
            self._published = digest
            self.metrics.status_publish.labels("committed" if commit else "unchanged").inc()
            if commit:
                log.info("status published commit=%s", commit[:12])
            return commit

    def _failed(self, error: str) -> None:
        self.metrics.status_publish.labels("error").inc()
        self.metrics.status_publish_errors.inc()
        self.metrics.errors.labels("status").inc()
        if _shape(error) != _shape(self.error or ""):  # once per change, not once per attempt
            log.warning("status publish failed error=%s", error)
        self.error = error
        self.failures += 1
        self.metrics.condition.labels("Node", self.settings.node, "StatusPublished").set(0)
