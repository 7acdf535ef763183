"""The agent's clocks, owned by APScheduler (3.x, on the agent's event loop): the git poll (with jitter), the
drift-correction resync, status publishing and each resource's own observe interval. A job only *wakes* work,
so triggers coalesce and none is lost while work is in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.agent.tick import Reconciler
from reconciler.settings import AgentSettings


class Clocks:
    def __init__(
        self,
        settings: AgentSettings,
        reconciler: Reconciler,
        *,
        fetch: asyncio.Event,
        resync: asyncio.Event,
        publish: Callable[[], Awaitable[object]],
    ) -> None:
        self.settings = settings
        self.reconciler = reconciler
        self.fetch = fetch
        self.resync = resync
        self.publish = publish
        self.scheduler: AsyncIOScheduler | None = None

    # Coroutine jobs run on the loop; a plain callable would run in a thread, where asyncio events are unsafe.
    async def _wake_fetch(self) -> None:
        self.fetch.set()

    async def _wake_resync(self) -> None:
        self.resync.set()

    async def _observe(self, kind: str, name: str) -> None:
        self.reconciler.observe((kind, name))

    def start(self) -> None:
        interval = self.settings.interval.total_seconds()
        scheduler = AsyncIOScheduler(timezone=UTC)
        jitter = max(0.1, min(interval * 0.1, 5.0))
        scheduler.add_job(self._wake_fetch, IntervalTrigger(seconds=interval, jitter=jitter), id="sync", coalesce=True)
        scheduler.add_job(
            self._wake_resync,
            IntervalTrigger(seconds=self.settings.resync_interval.total_seconds()),
            id="resync",
            coalesce=True,
        )
        scheduler.add_job(
            self.publish,
            IntervalTrigger(seconds=self.settings.status_interval.total_seconds()),
            id="status",
            coalesce=True,
            max_instances=1,
        )
        scheduler.start()
        self.scheduler = scheduler
        self.schedule_observe_jobs()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)

    def schedule_observe_jobs(self) -> None:
        """One job per resource whose capability asks to be observed on its own interval."""
        if self.scheduler is None:
            return
        wanted: dict[str, tuple[timedelta, str, str]] = {}
        for (kind, name), slot in self.reconciler.slots.items():
            capability = slot.capability
            interval = capability.observe_interval(capability.narrow(slot.resource)) if capability else None
            if interval is not None:
                wanted[f"observe:{kind}/{name}"] = (interval, kind, name)
        for job in self.scheduler.get_jobs():
            if job.id.startswith("observe:") and job.id not in wanted:
                job.remove()
        for job_id, (interval, kind, name) in wanted.items():
            existing = self.scheduler.get_job(job_id)
            if existing is None or existing.trigger.interval != interval:
                self.scheduler.add_job(
                    self._observe,
                    IntervalTrigger(seconds=interval.total_seconds()),
                    args=(kind, name),
                    id=job_id,
                    replace_existing=True,
                    coalesce=True,
                    max_instances=1,
                )
