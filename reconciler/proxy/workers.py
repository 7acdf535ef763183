"""The data plane in worker processes: each binds every port with SO_REUSEPORT and the kernel spreads new
connections over them, so the data path uses more than one core and never waits for the agent's own work (a
cold reload parses for seconds; in worker processes that costs proxied traffic nothing).

The agent talks to each worker over a pipe: snapshots go down and listen errors come up; counters come up
when the agent asks for them (every ``COUNTER_INTERVAL``, one question at a time), so a worker never writes
into a pipe the agent is not reading: a busy or stopped agent can't make the data path wait on a full pipe.
A worker that dies is started again with the last snapshot. Workers ignore SIGTERM and SIGINT: the agent
tells them when to drain (a service manager signals the whole group), and a worker whose agent is gone drains
and exits on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import multiprocessing
import signal
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from reconciler.proxy.engine import IN, Engine
from reconciler.proxy.plane import AppCounters, DataPlane, ListenErrors, Snapshot

log = logging.getLogger(__name__)

COUNTER_INTERVAL = 0.5
APPLY_TIMEOUT = 10.0
SHORT_LIFE = 5.0  # a worker that dies younger than this is started again only after RESTART_DELAY
RESTART_DELAY = 1.0  # so a worker that crashes at start costs one spawn a second, not a core


# --- in the worker process -----------------------------------------------------------------------------------


class _Control:
    """The worker's end of the pipe, as one more handler on its engine."""

    def __init__(self, conn: Connection, plane: DataPlane) -> None:
        self.conn = conn
        self.plane = plane
        self.stopping = False

    def on_event(self, mask: int) -> None:
        try:
            while self.conn.poll():
                message = self.conn.recv()
                if message[0] == "apply":
                    _, sequence, snapshot = message
                    self.conn.send(("applied", sequence, self.plane.apply(snapshot)))
                elif message[0] == "counters":
                    self.conn.send(("counters", self.plane.counters()))
                elif message[0] == "stop":
                    self.stop()
        except (EOFError, OSError):  # the agent is gone: finish what runs, then leave
            self.stop()

    def on_error(self) -> None:
        """A message could not be handled: the agent's apply times out and it sends the next snapshot."""

    def stop(self) -> None:
        if not self.stopping:
            self.stopping = True
            self.plane.stop()
            with contextlib.suppress(OSError, ValueError):  # the pipe may be closed already
                self.plane.engine.unwatch(self.conn.fileno())


def worker_main(conn: Connection, drain: float, log_level: int, index: int = 0) -> None:
    """Entry point of a worker process; ``index`` names it in its log lines (every worker logs the same events)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format=f"%(asctime)s %(levelname)s %(name)s worker {index}: %(message)s")
    # the worker has no Clock seam to be given: its engine's clock is the process's own monotonic time
    engine = Engine(time.monotonic)  # noqa: TID251
    plane = DataPlane(engine, drain=drain)
    control = _Control(conn, plane)
    engine.watch(conn.fileno(), control, IN)
    # what the process holds now lives as long as it does: the collector need not scan it again and again
    gc.freeze()
    while not (control.stopping and plane.idle):
        deadline = engine.next_deadline()
        engine.run_ready(1.0 if deadline is None else max(0.0, min(1.0, deadline - engine.clock())))
    with contextlib.suppress(OSError):
        conn.send(("counters", plane.counters()))
    engine.close()


def per_worker(snapshot: Snapshot, count: int) -> Snapshot:
    """Each worker's share of an app's connection limit (rounded up), so that together they keep it.

    The kernel spreads connections by a hash, not by load: one worker may reach its share while another has
    room, so an app can be held back a little below its limit, never above it (plus rounding).
    """
    return {
        key: replace(spec, settings=replace(spec.settings, max_connections=-(-spec.settings.max_connections // count)))
        for key, spec in snapshot.items()
    }


# --- in the agent --------------------------------------------------------------------------------------------


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    conn: Connection
    started: float
    counters: dict[str, AppCounters] = field(default_factory=dict)
    asked: bool = False  # a counters question is on its way: no second one until it is answered


class WorkerProcesses:
    """``count`` worker processes running the same snapshot."""

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int, *, drain: float) -> None:
        self.loop = loop
        self.count = count
        self.drain = drain
        self.workers: list[_Worker] = []
        self.snapshot: Snapshot = {}
        self.restarts = 0
        self._sequence = itertools.count(1)
        self._waiting: dict[tuple[int, int], asyncio.Future[ListenErrors]] = {}
        self._closing = False
        # spawn, not fork: the agent has threads (git, parsing), and a forked copy of a lock held by one of them
        # would never be released in the child
        self._context = multiprocessing.get_context("spawn")
        for index in range(count):
            self.workers.append(self._start(index))
        self._asking = loop.call_later(COUNTER_INTERVAL, self._ask_counters)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process.pid is not None]

    def _start(self, index: int) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=worker_main,
            args=(theirs, self.drain, logging.getLogger().getEffectiveLevel(), index),
            name=f"reconciler-proxy-{index}",
            daemon=True,
        )
        process.start()
        theirs.close()
        worker = _Worker(index, process, ours, self.loop.time())
        self.loop.add_reader(ours.fileno(), self._receive, worker)
        return worker

    def _receive(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                message: Any = worker.conn.recv()
                if message[0] == "counters":
                    worker.counters = message[1]
                    worker.asked = False
                elif message[0] == "applied":
                    future = self._waiting.pop((worker.index, message[1]), None)
                    if future is not None and not future.done():
                        future.set_result(message[2])
        except (EOFError, OSError):
            self._lost(worker)

    def _lost(self, worker: _Worker) -> None:
        self.loop.remove_reader(worker.conn.fileno())
        worker.conn.close()
        for key in [k for k in self._waiting if k[0] == worker.index]:
            self._waiting.pop(key).set_result({})
        if self._closing:
            return
        worker.process.join(timeout=1)
        delay = RESTART_DELAY if self.loop.time() - worker.started < SHORT_LIFE else 0.0
        log.error(
            "proxy worker %d exited (code %s): starting it again in %.1fs",
            worker.index,
            worker.process.exitcode,
            delay,
        )
        self.loop.call_later(delay, self._restart, worker.index)

    def _ask_counters(self) -> None:
        for worker in self.workers:
            if not worker.asked and not worker.conn.closed:
                with contextlib.suppress(OSError):
                    worker.conn.send(("counters",))
                    worker.asked = True
        self._asking = self.loop.call_later(COUNTER_INTERVAL, self._ask_counters)

    def _restart(self, index: int) -> None:
        if self._closing:
            return
        self.restarts += 1
        replacement = self._start(index)
        self.workers[index] = replacement
        self._send(replacement, self.snapshot)

    def _send(self, worker: _Worker, snapshot: Snapshot) -> asyncio.Future[ListenErrors]:
        sequence = next(self._sequence)
        future: asyncio.Future[ListenErrors] = self.loop.create_future()
        self._waiting[(worker.index, sequence)] = future
        try:
            worker.conn.send(("apply", sequence, dict(snapshot)))
        except OSError:
            self._waiting.pop((worker.index, sequence), None)
            future.set_result({})
        return future

    async def apply(self, snapshot: Snapshot) -> ListenErrors:
        self.snapshot = snapshot = per_worker(snapshot, self.count)
        futures = [self._send(worker, snapshot) for worker in self.workers]
        errors: ListenErrors = {}
        async with asyncio.timeout(APPLY_TIMEOUT):
            for result in await asyncio.gather(*futures):
                for key, addresses in result.items():
                    errors.setdefault(key, {}).update(addresses)
        return errors

    def push(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot = per_worker(snapshot, self.count)
        for worker in self.workers:
            self._send(worker, snapshot)

    def counters(self) -> dict[str, AppCounters]:
        total: dict[str, AppCounters] = {}
        for worker in self.workers:
            for key, counters in worker.counters.items():
                if key not in self.snapshot:
                    continue
                if key in total:
                    total[key].add(counters)
                else:
                    total[key] = AppCounters(dict(counters.stats), dict(counters.targets), list(counters.listening))
        return total

    def kill(self) -> None:
        """End every worker now (a stop out of time: their drain is over)."""
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.kill()

    async def close(self) -> None:
        self._closing = True
        self._asking.cancel()
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker.conn.send(("stop",))
        for worker in self.workers:
            await asyncio.to_thread(worker.process.join, self.drain + 5)
            if worker.process.is_alive():
                log.error("proxy worker %d did not stop: killing it", worker.index)
                worker.process.kill()
                await asyncio.to_thread(worker.process.join, 5)
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(worker.conn.fileno())
            worker.conn.close()
