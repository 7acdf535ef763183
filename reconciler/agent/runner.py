"""The running agent: scheduler, workers, HTTP API, status publishing, graceful shutdown.

APScheduler (3.x, on the agent's event loop) owns the clocks: the git poll (with jitter), the drift-correction
resync, per-resource observe intervals and status publishing. Its jobs only *wake* two long-lived workers, so
triggers coalesce and none is lost while work is in flight:

- the sync worker fetches the branch (backing off on failures; a webhook wakes it at once);
- the reconcile worker runs ticks (a failed tick is retried with backoff; a new revision wakes it at once,
  so a newer revision never waits behind a failing older one).

SIGTERM/SIGINT: stop the scheduler, let the tick in flight finish, publish a final status, stop serving; all
within ``shutdown_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
from datetime import UTC, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.agent.backoff import Backoff
from reconciler.agent.capabilities import CapabilityContext, build_capabilities
from reconciler.agent.metrics import Metrics
from reconciler.agent.tick import Reconciler, TickResult
from reconciler.api import server
from reconciler.appliers.base import Capability
from reconciler.errors import ReconcilerError
from reconciler.loading.loader import LoadOptions
from reconciler.planning.plan import Plan
from reconciler.proxy.manager import ProxyManager
from reconciler.settings import AgentSettings
from reconciler.status.documents import status_files, status_prefix
from reconciler.status.state_file import SavedState, StateFileError, decode
from reconciler.system.clock import Clock, SystemClock
from reconciler.system.files import FileSystem, LocalFileSystem
from reconciler.system.git import Git, GitRepository

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
STATUS_FILE = "status.json"
PROXY_HEALTH = "proxyTargetsDown"


def load_saved_state(settings: AgentSettings, files: FileSystem) -> SavedState:
    content = files.read_bytes(settings.state_dir / STATE_FILE)
    if content is None:
        return SavedState()
    try:
        return decode(content)
    except StateFileError as exc:
        log.warning("state file ignored path=%s reason=%s", settings.state_dir / STATE_FILE, exc)
        return SavedState()


def real_git(settings: AgentSettings) -> Git:
    return GitRepository(
        settings.repo,
        workdir=settings.state_dir / "repo.git",
        branch=settings.branch,
        path=settings.path,
        status_branch=settings.status_branch,
        identity=settings.author,
        timeout=settings.git_timeout.total_seconds(),
        sign=settings.sign_status,
        allowed_signers=settings.allowed_signers,
        gpg_home=settings.gpg_home,
    )


def _digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path] + b"\0")
    return digest.hexdigest()


class Agent:
    """One node's agent. Implements the HTTP API's handle."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        git: Git,
        clock: Clock | None = None,
        capabilities: dict[str, Capability] | None = None,
        metrics: Metrics | None = None,
        load_options: LoadOptions | None = None,
        files: FileSystem | None = None,
    ) -> None:
        self.settings = settings
        self.git = git
        self.files = files or LocalFileSystem()
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.webhook_secret = settings.webhook_secret
        saved = load_saved_state(settings, self.files)
        known_down = {k: set(v) for k, v in saved.extra.get(PROXY_HEALTH, {}).items()}
        self.proxies = ProxyManager(
            drain=settings.shutdown_timeout.total_seconds() / 2, known_down=known_down, workers=settings.proxy_workers
        )
        self.metrics.watch_proxies(self.proxies.snapshot, self.proxies.worker_restarts)
        self.files.ensure_directory(settings.state_dir)
        self.reconciler = Reconciler(
            settings,
            git=git,
            clock=self.clock,
            capabilities=capabilities
            if capabilities is not None
            else build_capabilities(CapabilityContext(self.proxies)),
            metrics=self.metrics,
            saved=saved,
            load_options=load_options,
        )
        self.sync_backoff = Backoff(base=1.0, cap=max(30.0, settings.interval.total_seconds()))
        self.tick_backoff = Backoff(base=1.0, cap=60.0)
        self._sync_wake = asyncio.Event()
        self._tick_wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._retry_sync_at = 0.0
        self._published: str | None = None
        self._persisted: tuple[bytes, bytes] | None = None
        self._publish_lock = asyncio.Lock()
        self.scheduler: AsyncIOScheduler | None = None

    # --- the HTTP handle ---------------------------------------------------------------------------------------

    def is_ready(self) -> bool:
        return self.reconciler.ready

    def status_document(self) -> dict[str, Any]:
        return self.reconciler.status.as_dict()

    def config_document(self) -> dict[str, Any]:
        desired = self.reconciler.desired
        resources = [r.model_dump(mode="json", by_alias=True) for r in desired] if desired is not None else []
        return {
            "settings": self.settings.public(),
            "revision": self.reconciler.desired_revision,
            "resources": resources,
        }

    def current_plan(self) -> Plan:
        return self.reconciler.plan

    def metrics_exposition(self) -> bytes:
        return self.metrics.exposition()

    def trigger_sync(self, reason: str) -> None:
        log.info("sync requested reason=%s", reason)
        self._retry_sync_at = 0.0
        self._sync_wake.set()

    def count_webhook(self, result: str) -> None:
        self.metrics.webhook.labels(result).inc()

    # --- work ------------------------------------------------------------------------------------------------

    async def sync(self) -> bool:
        """Fetch once. True when a new revision arrived (and the reconcile worker was woken)."""
        try:
            revision = await self.fetch()
        except ReconcilerError as exc:
            delay = self.sync_backoff.next()
            self._retry_sync_at = self.clock.monotonic() + delay
            self.metrics.git_fetch.labels("error").inc()
            self.metrics.errors.labels("git").inc()
            self.metrics.git_backoff.set(delay)
            log.warning("fetch failed retry_in=%.1fs error=%s", delay, exc)
            return False
        return self._accept(revision)

    async def fetch(self) -> str:
        return await asyncio.to_thread(self.git.fetch)

    def _accept(self, revision: str) -> bool:
        self.sync_backoff.reset()
        self._retry_sync_at = 0.0
        self.metrics.git_backoff.set(0)
        self.metrics.git_fetch.labels("ok").inc()
        self.metrics.last_sync.set(self.clock.now())
        if revision == self.reconciler.fetched_revision:
            return False
        log.info("new revision revision=%s branch=%s", revision[:12], self.settings.branch)
        self.reconciler.fetched_revision = revision
        self.tick_backoff.reset()
        self._tick_wake.set()
        return True

    async def tick(self) -> TickResult:
        result = await self.reconciler.tick()
        self.persist()
        self._schedule_observe_jobs()
        return result

    def persist(self) -> None:
        """Write the state file and the local status snapshot, atomically, when they changed."""
        self.reconciler.saved.extra[PROXY_HEALTH] = self.proxies.health()
        state = self.reconciler.saved.encode()
        snapshot = json.dumps(self.status_document(), indent=2).encode() + b"\n"
        if self._persisted == (state, snapshot):
            return
        self.files.write_atomic(self.settings.state_dir / STATE_FILE, state)
        self.files.write_atomic(self.settings.state_dir / STATUS_FILE, snapshot)
        self._persisted = (state, snapshot)

    async def publish(self, *, final: bool = False) -> str | None:
        """Commit this node's status files to the status branch if they changed; the new commit or None."""
        if self.reconciler.saved.attempted_revision is None and self.reconciler.stall is None:
            return None  # nothing loaded yet: there is no status worth a commit
        async with self._publish_lock:
            files = status_files(self.reconciler.status)
            digest = _digest(files)
            if digest == self._published and not final:
                return None
            status = self.reconciler.status
            message = self.settings.status_message.format(
                node=self.settings.node, revision=(status.applied_revision or "-")[:12]
            )
            try:
                commit = await asyncio.to_thread(
                    self.git.publish, files, prefix=status_prefix(self.settings.node), message=message
                )
            except ReconcilerError as exc:
                self.metrics.status_publish.labels("error").inc()
                self.metrics.errors.labels("status").inc()
                log.warning("status publish failed error=%s", exc)
                return None
            self._published = digest
            self.metrics.status_publish.labels("committed" if commit else "unchanged").inc()
            if commit:
                log.info("status published commit=%s", commit[:12])
            return commit

    # --- workers ---------------------------------------------------------------------------------------------

    async def _sync_worker(self) -> None:
        while not self._stopping.is_set():
            await self._sync_wake.wait()
            self._sync_wake.clear()
            if self.clock.monotonic() < self._retry_sync_at:
                continue  # backing off: the poll timer fired before the retry time
            await self.sync()
            if self._retry_sync_at:
                asyncio.get_running_loop().call_later(
                    max(0.0, self._retry_sync_at - self.clock.monotonic()), self._sync_wake.set
                )

    async def _reconcile_worker(self) -> None:
        while not self._stopping.is_set():
            await self._tick_wake.wait()
            self._tick_wake.clear()
            if self._stopping.is_set():
                return
            result = await self.tick()
            if result.outcome == "degraded":
                delay = self.tick_backoff.next()
                log.info("reconcile degraded failed=%s retry_in=%.1fs", ",".join(result.failed), delay)
                asyncio.get_running_loop().call_later(delay, self._tick_wake.set)
            else:
                self.tick_backoff.reset()

    def _schedule_observe_jobs(self) -> None:
        """One job per resource whose capability asks to be observed on its own interval."""
        if self.scheduler is None:
            return
        wanted: dict[str, timedelta] = {}
        desired = self.reconciler.desired
        for resource in desired if desired is not None else ():
            capability = self.reconciler.capabilities.get(resource.KIND)
            interval = capability.observe_interval(resource) if capability is not None else None
            if interval is not None:
                wanted[f"observe:{resource.KIND}/{resource.metadata.name}"] = interval
        for job in self.scheduler.get_jobs():
            if job.id.startswith("observe:") and job.id not in wanted:
                job.remove()
        for job_id, interval in wanted.items():
            existing = self.scheduler.get_job(job_id)
            if existing is None or existing.trigger.interval != interval:
                self.scheduler.add_job(
                    self._tick_wake.set,
                    IntervalTrigger(seconds=interval.total_seconds()),
                    id=job_id,
                    replace_existing=True,
                    coalesce=True,
                    max_instances=1,
                )

    def _start_scheduler(self) -> AsyncIOScheduler:
        interval = self.settings.interval.total_seconds()
        scheduler = AsyncIOScheduler(timezone=UTC)
        jitter = max(0.1, min(interval * 0.1, 5.0))
        scheduler.add_job(
            self._sync_wake.set, IntervalTrigger(seconds=interval, jitter=jitter), id="sync", coalesce=True
        )
        scheduler.add_job(
            self._tick_wake.set,
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
        return scheduler

    # --- lifecycle -------------------------------------------------------------------------------------------

    async def run_once(self) -> TickResult:
        """One pass: fetch, reconcile, publish. Raises the fetch failure if the remote cannot be read."""
        self._accept(await self.fetch())
        try:
            result = await self.tick()
            await self.publish(final=True)
        finally:
            await self.proxies.close()  # one pass: proxies do not outlive the process
        return result

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        host, _, port = self.settings.listen.rpartition(":")
        http = await server.start(self, host.strip("[]") or "127.0.0.1", int(port))
        scheduler = self._start_scheduler()
        try:
            async with asyncio.TaskGroup() as group:
                sync_task = group.create_task(self._sync_worker(), name="sync-worker")
                tick_task = group.create_task(self._reconcile_worker(), name="reconcile-worker")
                self._sync_wake.set()
                await self._stopping.wait()
                await self._shutdown(scheduler, sync_task, tick_task)
        finally:
            await http.cleanup()
        log.info("agent stopped")
        return 0

    def stop(self) -> None:
        log.info("stop requested: finishing the work in flight")
        self._stopping.set()

    async def _shutdown(self, scheduler: AsyncIOScheduler, *workers: asyncio.Task[None]) -> None:
        deadline = self.clock.monotonic() + self.settings.shutdown_timeout.total_seconds()
        scheduler.shutdown(wait=False)
        sync_task, tick_task = workers
        sync_task.cancel()
        self._tick_wake.set()  # lets an idle reconcile worker see the stop and return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            # The tick in flight (if any) finishes; a worker that will not, is cancelled at the deadline.
            await asyncio.wait_for(asyncio.shield(tick_task), timeout=max(0.1, deadline - self.clock.monotonic()))
        if not tick_task.done():
            tick_task.cancel()
        self.persist()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.publish(final=True), timeout=max(0.1, deadline - self.clock.monotonic()))
        with contextlib.suppress(TimeoutError):
            # Established proxy connections get what is left of the shutdown budget to finish.
            await asyncio.wait_for(self.proxies.close(), timeout=max(0.1, deadline - self.clock.monotonic()))
