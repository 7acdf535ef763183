"""The running agent: the ``Agent`` composes its parts (built by ``composition``) and owns their lifecycle:
start, the two workers, a final status, and a bounded shutdown.

- the fetch loop (``fetching``) fetches the branch when a clock or a webhook wakes it, backing off on failures;
- the reconcile worker loads a new revision and starts a pass over every resource (``Reconciler.dispatch``);
  it never waits for those passes, so a newer revision never waits behind a slow or failing resource;
- ``clocks`` (APScheduler) wakes both, publishes status and starts each resource's observe passes; failed passes
  retry on their own backoff;
- ``handle`` is what the HTTP API serves; ``state_store`` writes the state file after passes, ``publishing``
  commits status to the status branch.

The agent knows no capability by name: they come from the registry, with their seams, in ``composition``.

SIGTERM/SIGINT (``stop_signal``; the CLI blocks both in every thread and child and one thread takes them, so
that Ctrl-C in a terminal kills no git and no proxy worker mid-way: ``system/signals``): stop the clocks, give
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

from reconciler.agent.clocks import Clocks
from reconciler.agent.composition import AgentParts, compose
from reconciler.agent.fetching import FetchLoop
from reconciler.agent.handle import HttpHandle
from reconciler.agent.metrics import Metrics
from reconciler.agent.tick import TickResult
from reconciler.api import server
from reconciler.capabilities.registry import AnyCapability
from reconciler.errors import SettingsError
from reconciler.loading.loader import LoadOptions
from reconciler.model.values import host_and_port
from reconciler.settings import AgentSettings
from reconciler.system.clock import Clock
from reconciler.system.files import FileSystem
from reconciler.system.network import Connector
from reconciler.system.processes import kill_descendants
from reconciler.system.resolver import Resolver
from reconciler.system.source import DesiredStateSource, StatusPublisher

log = logging.getLogger(__name__)

EXIT_CLEAN, EXIT_UNCLEAN = 0, 3
WATCHDOG_GRACE = 1.5  # seconds past --shutdown-timeout before the watchdog ends everything


class Agent:
    """One node's agent."""

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
        parts = compose(
            settings,
            source=source,
            publisher=publisher,
            clock=clock,
            capabilities=capabilities,
            metrics=metrics,
            load_options=load_options,
            files=files,
            resolver=resolver,
            connector=connector,
        )
        self.parts: AgentParts = parts
        self.settings = settings
        self.reconciler = parts.reconciler
        self.reconciler.on_pass = self._flush
        self._tick_wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.fetching = FetchLoop(
            settings,
            source=source,
            clock=parts.clock,
            metrics=parts.metrics,
            reconciler=self.reconciler,
            new_revision=self._tick_wake,
        )
        self.handle = HttpHandle(parts, self.fetching)
        self.clocks = Clocks(
            settings, self.reconciler, fetch=self.fetching.wake, resync=self._tick_wake, publish=self.publish
        )
        self._loop: asyncio.AbstractEventLoop | None = None  # while run() runs: where a stop from a thread goes
        self._stop_early = False  # a stop signal came before run() started
        self._clean = True  # the stop so far went as planned
        self._watchdog: threading.Timer | None = None

    @property
    def capabilities(self) -> dict[str, AnyCapability]:
        return self.parts.capabilities

    @property
    def state_error(self) -> str | None:
        """Why the state file cannot be written now (a full disk, say)."""
        return self.parts.store.error

    # --- work ------------------------------------------------------------------------------------------------

    async def tick(self) -> TickResult:
        """Load what is new and reconcile every resource, waiting for all of them (``--once``)."""
        result = await self.reconciler.tick()
        self._flush()
        return result

    def _flush(self) -> None:
        """After passes (the reconciler calls this once per loop turn, however many ended in it) and after a tick:
        persist and (re)schedule the resources' observe clocks."""
        self.persist()
        self.clocks.schedule_observe_jobs()

    def persist(self) -> None:
        """Write the state file and the local status snapshot, atomically, when they changed."""
        saved = self.reconciler.saved
        saved.capabilities.update(self.parts.states.encode())
        snapshot = json.dumps(self.handle.status_document(), indent=2).encode() + b"\n"
        self.parts.store.write(saved.encode(), snapshot)

    async def publish(self, *, final: bool = False) -> str | None:
        """Commit this node's status files to the status branch if they changed; the new commit or None."""
        if self.reconciler.saved.attempted_revision is None and self.reconciler.stall is None:
            return None  # nothing loaded yet: there is no status worth a commit
        stopped = self.reconciler.view.stopped_at is not None
        return await self.parts.publishing.publish(self.reconciler.status, stopped=stopped, final=final)

    async def _reconcile_worker(self) -> None:
        while not self._stopping.is_set():
            await self._tick_wake.wait()
            self._tick_wake.clear()
            if self._stopping.is_set():
                return
            await self.reconciler.dispatch()
            self.persist()

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
        self.fetching.accept(await self.fetching.fetch())
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
            http = await server.start(self.handle, host, port, routes=routes, limits=limits)
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise SettingsError(f"--listen {listen}: cannot listen there: {why}") from None
        await self._start_capabilities()
        self.reconciler.background = True
        self.clocks.start()
        try:
            async with asyncio.TaskGroup() as group:
                sync_task = group.create_task(self.fetching.run(self._stopping), name="sync-worker")
                tick_task = group.create_task(self._reconcile_worker(), name="reconcile-worker")
                self.fetching.wake.set()
                await self._stopping.wait()
                await self._shutdown(sync_task, tick_task)
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

    async def _shutdown(self, sync_task: asyncio.Task[None], tick_task: asyncio.Task[None]) -> None:
        deadline = asyncio.get_running_loop().time() + self.settings.shutdown_timeout.total_seconds()
        self.clocks.stop()
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
        if self.parts.publishing.error is not None:
            self._unclean(f"the final status was not published: {self.parts.publishing.error}")
        await self._close_capabilities(deadline)

    def _unclean(self, why: str) -> None:
        log.warning("stop not clean: %s", why)
        self._clean = False
