"""The running agent: scheduler, workers, HTTP API, graceful shutdown; it composes the reconciler (``tick``),
status publishing (``publishing``) and the state dir's files (``state_store``).

APScheduler (3.x, on the agent's event loop) owns the clocks: the git poll (with jitter), the drift-correction
resync, each resource's own observe interval and status publishing. Its jobs only *wake* work, so triggers
coalesce and none is lost while work is in flight:

- the sync worker fetches the branch (backing off on failures; a webhook wakes it at once);
- the reconcile worker loads a new revision and starts a pass over every resource (``Reconciler.dispatch``);
  it never waits for those passes, so a newer revision never waits behind a slow or failing resource;
- a resource's observe job starts a pass over that resource alone; failed passes retry on their own backoff.

The agent knows no capability by name: it builds them from the registry, restores and saves their part of the
state file, registers their metric collectors and serves their HTTP routes.

SIGTERM/SIGINT (``stop_signal``; the CLI blocks both in every thread and child and one thread takes them, so
that Ctrl-C in a terminal kills no git and no proxy worker mid-way: ``system/signals``): stop the scheduler, give
passes in flight until the deadline, publish a final status, close every capability (proxies drain), stop
serving; all within ``shutdown_timeout``. Whatever hangs, a watchdog ends the process and every process below it
1.5 s after that; a second signal does so at once. The exit code is 0 for a clean stop and 3 when any part of it
failed or was cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
from datetime import UTC, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.agent.backoff import Backoff
from reconciler.agent.metrics import Metrics
from reconciler.agent.publishing import StatusPublishing
from reconciler.agent.resource_states import ResourceStates
from reconciler.agent.state_store import StateStore
from reconciler.agent.tick import Reconciler, TickResult
from reconciler.api import server
from reconciler.capabilities.registry import AnyCapability, CapabilityContext, build_capabilities
from reconciler.errors import ReconcilerError, SettingsError
from reconciler.loading.loader import LoadOptions
from reconciler.model.values import host_and_port
from reconciler.planning.plan import Plan
from reconciler.settings import AgentSettings
from reconciler.system.clock import Clock, SystemClock
from reconciler.system.cpus import usable_cpus
from reconciler.system.files import FileSystem, LocalFileSystem
from reconciler.system.http import HttpxFetcher
from reconciler.system.network import Connector, TcpConnector
from reconciler.system.processes import kill_descendants
from reconciler.system.resolver import DnsResolver, Resolver
from reconciler.system.routes import NetlinkRouteTable
from reconciler.system.source import DesiredStateSource, StatusPublisher

log = logging.getLogger(__name__)

EXIT_CLEAN, EXIT_UNCLEAN = 0, 3
WATCHDOG_GRACE = 1.5  # seconds past --shutdown-timeout before the watchdog ends everything
SCRAPE_TIMEOUT = 5.0  # seconds a capability may take to read its metrics before a scrape (Prometheus: 10 s)


class Agent:
    """One node's agent. Implements the HTTP API's handle."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        source: DesiredStateSource,
        publisher: StatusPublisher | None = None,
        clock: Clock | None = None,
        capabilities: dict[str, AnyCapability] | None = None,
        metrics: Metrics | None = None,
        load_options: LoadOptions | None = None,
        files: FileSystem | None = None,
        resolver: Resolver | None = None,
        connector: Connector | None = None,
    ) -> None:
        self.settings = settings
        self.source = source
        self.files = files or LocalFileSystem()
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.publishing = StatusPublishing(settings, publisher, self.clock, self.metrics)
        self.webhook_secret = settings.webhook_secret
        self.store = StateStore(settings, self.files, self.metrics, self.clock.now())
        saved = self.store.saved
        context: CapabilityContext | None = None
        if capabilities is None:
            context = CapabilityContext(
                settings,
                self.clock,
                resolver or DnsResolver(nameservers=settings.nameservers or None),
                connector or TcpConnector(),
                fetcher=HttpxFetcher(self.clock),
                routes=NetlinkRouteTable(),
                cpus=usable_cpus(),
            )
            capabilities = build_capabilities(context)
        self.capabilities = capabilities
        self.states = ResourceStates(capabilities)
        self.states.restore(saved.capabilities)
        for capability in capabilities.values():
            for collector in capability.collectors():
                self.metrics.register(collector)
        self.files.ensure_directory(settings.state_dir)
        self.reconciler = Reconciler(
            settings,
            source=source,
            clock=self.clock,
            capabilities=capabilities,
            metrics=self.metrics,
            saved=saved,
            states=self.states,
            load_options=load_options,
            on_pass=self._flush,
        )
        if context is not None:
            context.passes.handler = lambda kind, name: self.reconciler.observe((kind, name))
        self.sync_backoff = Backoff(base=1.0, cap=max(30.0, settings.interval.total_seconds()))
        self._sync_wake = asyncio.Event()
        self._tick_wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # while run() runs: where a stop from a thread goes
        self._stop_early = False  # a stop signal came before run() started
        self._retry_sync_at = 0.0
        self._clean = True  # the stop so far went as planned
        self._watchdog: threading.Timer | None = None
        self.scheduler: AsyncIOScheduler | None = None

    # --- the HTTP handle ---------------------------------------------------------------------------------------

    def is_ready(self) -> bool:
        return self.reconciler.ready

    def status_document(self) -> dict[str, Any]:
        """The node's status, with a False condition for each of the node's own troubles: StatusPublished while
        publishing fails (the status branch cannot carry the news that it cannot be reached) and StateSaved while
        the state file cannot be written. Shown here and in `reconciler status`."""
        document = {**self.reconciler.status.as_dict(), "statusPublish": self.publish_state()}
        troubles = [
            (
                "StatusPublished",
                "PublishFailing",
                self.publishing.error,
                f"{self.publishing.failures} failure(s) in a row",
            ),
            ("StateSaved", "WriteFailing", self.state_error, "kept in memory until it can be written"),
            ("StateRestored", "Damaged", self.state_damaged, "until the next write of the state file"),
        ]
        document["conditions"] = [
            *document["conditions"],
            *(
                {"type": kind, "status": "False", "reason": reason, "message": f"{detail}: {error}"}
                for kind, reason, error, detail in troubles
                if error is not None
            ),
        ]
        return document

    def publish_state(self) -> dict[str, Any]:
        return self.publishing.state()

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

    async def metrics_exposition(self) -> bytes:
        """What /metrics serves: each capability first reads what takes I/O (bounded, so a stuck read costs its
        own counters, not the scrape), then every collector runs on the loop from memory, and the text is made in
        a thread (the loop goes on meanwhile)."""
        results = await asyncio.gather(
            *(asyncio.wait_for(c.before_scrape(), SCRAPE_TIMEOUT) for c in self.capabilities.values()),
            return_exceptions=True,
        )
        for kind, result in zip(self.capabilities, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("metrics not read before the scrape kind=%s error=%r", kind, result)
        return await asyncio.to_thread(Metrics.render, self.metrics.collect())

    def trigger_sync(self, reason: str) -> None:
        log.info("sync requested reason=%s", reason)
        self._retry_sync_at = 0.0
        self._sync_wake.set()

    def count_webhook(self, result: str) -> None:
        self.metrics.webhook.labels(result).inc()

    def approve_plan(self, checksum: str) -> list[str]:
        return self.reconciler.approve(checksum)

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
        return await asyncio.to_thread(self.source.fetch)

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
        self._tick_wake.set()
        return True

    async def tick(self) -> TickResult:
        """Load what is new and reconcile every resource, waiting for all of them (``--once``)."""
        result = await self.reconciler.tick()
        self._flush()
        return result

    def _flush(self) -> None:
        """After passes (the reconciler calls this once per loop turn, however many ended in it) and after a tick:
        persist and (re)schedule the resources' observe clocks."""
        self.persist()
        self._schedule_observe_jobs()

    def persist(self) -> None:
        """Write the state file and the local status snapshot, atomically, when they changed."""
        saved = self.reconciler.saved
        saved.capabilities.update(self.states.encode())
        snapshot = json.dumps(self.status_document(), indent=2).encode() + b"\n"
        self.store.write(self.reconciler.saved.encode(), snapshot)

    @property
    def state_error(self) -> str | None:
        """Why the state file cannot be written now (a full disk, say)."""
        return self.store.error

    @property
    def state_damaged(self) -> str | None:
        """Why the state file read at start could not be used; None once a good one was written."""
        return self.store.damaged

    async def publish(self, *, final: bool = False) -> str | None:
        """Commit this node's status files to the status branch if they changed; the new commit or None."""
        if self.reconciler.saved.attempted_revision is None and self.reconciler.stall is None:
            return None  # nothing loaded yet: there is no status worth a commit
        stopped = self.reconciler.stopped_at is not None
        return await self.publishing.publish(self.reconciler.status, stopped=stopped, final=final)

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
            await self.reconciler.dispatch()
            self.persist()

    async def _wake_sync(self) -> None:
        self._sync_wake.set()

    async def _wake_reconcile(self) -> None:
        self._tick_wake.set()

    async def _observe(self, kind: str, name: str) -> None:
        self.reconciler.observe((kind, name))

    def _schedule_observe_jobs(self) -> None:
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

    def _start_scheduler(self) -> AsyncIOScheduler:
        interval = self.settings.interval.total_seconds()
        scheduler = AsyncIOScheduler(timezone=UTC)
        jitter = max(0.1, min(interval * 0.1, 5.0))
        # Coroutine jobs run on the loop; a plain callable would run in a thread, where asyncio events are unsafe.
        scheduler.add_job(self._wake_sync, IntervalTrigger(seconds=interval, jitter=jitter), id="sync", coalesce=True)
        scheduler.add_job(
            self._wake_reconcile,
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
        self._schedule_observe_jobs()
        return scheduler

    # --- lifecycle -------------------------------------------------------------------------------------------

    async def _start_capabilities(self) -> None:
        for capability in self.capabilities.values():
            await capability.start()

    async def _close_capabilities(self, deadline: float) -> None:
        for kind, capability in self.capabilities.items():
            try:
                await capability.close(deadline)
            except Exception as exc:  # one capability that fails to stop must not keep the others running
                self._unclean(f"{kind} did not close: {exc}")

    async def run_once(self) -> TickResult:
        """One pass: fetch, reconcile, publish. Raises the fetch failure if the remote cannot be read."""
        self._accept(await self.fetch())
        await self._start_capabilities()
        try:
            result = await self.tick()
            await self.publish(final=True)
        finally:
            # one pass: what the capabilities run (proxies) does not outlive the process
            await self._close_capabilities(asyncio.get_running_loop().time() + 1.0)
        return result

    def stop_signal(self, signum: int) -> None:
        """A stop signal, from the thread that waits for them (``system/signals``): the agent stops once."""
        log.info("signal %s received", signal.Signals(signum).name)
        loop = self._loop
        if loop is None:
            self._stop_early = True
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: run() is over
            loop.call_soon_threadsafe(self.stop)

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        try:
            if self._stop_early:
                self.stop()
            return await self._run()
        finally:
            self._loop = None

    async def _run(self) -> int:
        listen = self.settings.listen
        host, port = host_and_port(f"127.0.0.1{listen}" if listen.startswith(":") else listen)
        routes = [route for capability in self.capabilities.values() for route in capability.routes()]
        try:
            # the soft descriptor limit raised to the hard one, a quarter of it for the API at most: a flood of
            # idle connections never takes what git, files, logs, health checks and proxied clients need
            limits = server.Limits(connections=server.descriptor_budget())
            http = await server.start(self, host, port, routes=routes, limits=limits)
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise SettingsError(f"--listen {listen}: cannot listen there: {why}") from None
        await self._start_capabilities()
        self.reconciler.background = True
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
            if self._watchdog is not None:
                self._watchdog.cancel()
        log.info("agent stopped clean=%s", self._clean)
        return EXIT_CLEAN if self._clean else EXIT_UNCLEAN

    def stop(self) -> None:
        if self._stopping.is_set():
            log.warning("second stop request: ending now")
            self._end_now()
        log.info("stop requested: finishing the work in flight")
        self._stopping.set()
        # Cancelled when run() returns; so a process that hosts the agent (tests) is only ended if the stop hangs.
        self._watchdog = threading.Timer(self.settings.shutdown_timeout.total_seconds() + WATCHDOG_GRACE, self._end_now)
        self._watchdog.daemon = True
        self._watchdog.start()

    @staticmethod
    def _end_now() -> None:
        """The stop could not finish in time (or was asked twice): every process below this one, then this one."""
        log.error("stopping now: ending this process and every process it started")
        kill_descendants()
        logging.shutdown()
        os._exit(EXIT_UNCLEAN)

    def _left(self, deadline: float) -> float:
        return max(0.1, deadline - asyncio.get_running_loop().time())

    async def _shutdown(self, scheduler: AsyncIOScheduler, *workers: asyncio.Task[None]) -> None:
        deadline = asyncio.get_running_loop().time() + self.settings.shutdown_timeout.total_seconds()
        scheduler.shutdown(wait=False)
        sync_task, tick_task = workers
        sync_task.cancel()
        self._tick_wake.set()  # lets an idle reconcile worker see the stop and return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            # A load in flight finishes; a worker that will not, is cancelled at the deadline.
            await asyncio.wait_for(asyncio.shield(tick_task), timeout=self._left(deadline) / 2)
        if not tick_task.done():
            tick_task.cancel()
            self._unclean("the revision being loaded was cut short")
        # Passes in flight get half of what is left, then are cancelled.
        try:
            await asyncio.wait_for(self.reconciler.settle(), timeout=self._left(deadline) / 2)
        except TimeoutError:
            self._unclean("passes in flight were cut short")
        await self.reconciler.close()
        self.reconciler.mark_stopped()
        self.persist()
        if self.state_error is not None:
            self._unclean(f"the state file was not written: {self.state_error}")
        try:
            await asyncio.wait_for(self.publish(final=True), timeout=self._left(deadline))
        except TimeoutError:
            self._unclean("the final status publish timed out")
        if self.publishing.error is not None:
            self._unclean(f"the final status was not published: {self.publishing.error}")
        await self._close_capabilities(deadline)

    def _unclean(self, why: str) -> None:
        log.warning("stop not clean: %s", why)
        self._clean = False
