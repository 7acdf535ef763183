"""The fetch loop: fetch the desired-state branch when woken (the poll timer, a webhook), back off on failures,
and wake the reconcile worker when a new revision arrived."""

from __future__ import annotations

import asyncio
import logging

from reconciler.agent.backoff import Backoff
from reconciler.agent.metrics import Metrics
from reconciler.agent.tick import Reconciler
from reconciler.errors import ReconcilerError
from reconciler.settings import AgentSettings
from reconciler.system.clock import Clock
from reconciler.system.source import DesiredStateSource

log = logging.getLogger(__name__)


class FetchLoop:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        source: DesiredStateSource,
        clock: Clock,
        metrics: Metrics,
        reconciler: Reconciler,
        new_revision: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.source = source
        self.clock = clock
        self.metrics = metrics
        self.reconciler = reconciler
        self.new_revision = new_revision  # set when a fetch brought a new revision
        self.backoff = Backoff(base=1.0, cap=max(30.0, settings.interval.total_seconds()))
        self.wake = asyncio.Event()
        self._retry_at = 0.0

    def trigger(self, reason: str) -> None:
        """Fetch now, even while backing off (a webhook said the branch moved)."""
        log.info("sync requested reason=%s", reason)
        self._retry_at = 0.0
        self.wake.set()

    async def fetch(self) -> str:
        return await asyncio.to_thread(self.source.fetch)

    async def sync(self) -> bool:
        """Fetch once. True when a new revision arrived (and the reconcile worker was woken)."""
        try:
            revision = await self.fetch()
        except ReconcilerError as exc:
            delay = self.backoff.next()
            self._retry_at = self.clock.monotonic() + delay
            self.metrics.git_fetch.labels("error").inc()
            self.metrics.errors.labels("git").inc()
            self.metrics.git_backoff.set(delay)
            log.warning("fetch failed retry_in=%.1fs error=%s", delay, exc)
            return False
        return self.accept(revision)

    def accept(self, revision: str) -> bool:
        """A fetch succeeded with ``revision``: True when it is new."""
        self.backoff.reset()
        self._retry_at = 0.0
        self.metrics.git_backoff.set(0)
        self.metrics.git_fetch.labels("ok").inc()
        self.metrics.last_sync.set(self.clock.now())
        if revision == self.reconciler.fetched_revision:
            return False
        log.info("new revision revision=%s branch=%s", revision[:12], self.settings.branch)
        self.reconciler.fetched_revision = revision
        self.new_revision.set()
        return True

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await self.wake.wait()
            self.wake.clear()
            if self.clock.monotonic() < self._retry_at:
                continue  # backing off: the poll timer fired before the retry time
            await self.sync()
            if self._retry_at:
                asyncio.get_running_loop().call_later(max(0.0, self._retry_at - self.clock.monotonic()), self.wake.set)
