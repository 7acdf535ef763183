"""The data plane inside the agent's asyncio loop: the engine's epoll is one more readable descriptor for it.

The engine keeps its own timers (connect timeouts, idle sweeps, drains, refused clients); one loop timer is
armed for the earliest of them, so the loop wakes only when something is due.
"""

from __future__ import annotations

import asyncio

from reconciler.proxy.engine import Engine
from reconciler.proxy.plane import AppCounters, DataPlane, ListenErrors, Snapshot


class InProcess:
    def __init__(self, loop: asyncio.AbstractEventLoop, *, drain: float) -> None:
        self.loop = loop
        self.engine = Engine(loop.time)
        self.plane = DataPlane(self.engine, drain=drain)
        self._timer: asyncio.TimerHandle | None = None
        self.engine.on_earlier_deadline = self._arm
        loop.add_reader(self.engine.fileno(), self._ready)

    async def apply(self, snapshot: Snapshot) -> ListenErrors:
        return self.plane.apply(snapshot)  # timers it adds arm the loop through on_earlier_deadline

    def push(self, snapshot: Snapshot) -> None:
        self.plane.apply(snapshot)

    def counters(self) -> dict[str, AppCounters]:
        return self.plane.counters()

    async def close(self) -> None:
        self.plane.stop()
        while not self.plane.idle:
            await asyncio.sleep(0.05)
        self.loop.remove_reader(self.engine.fileno())
        if self._timer is not None:
            self._timer.cancel()
        self.engine.close()

    def _ready(self) -> None:
        self.engine.run_ready(0)
        self._arm_next()

    def _fire(self) -> None:
        self._timer = None
        self.engine.run_timers()
        self._arm_next()

    def _arm_next(self) -> None:
        deadline = self.engine.next_deadline()
        if deadline is not None:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            if self._timer.when() <= deadline:
                return
            self._timer.cancel()
        self._timer = self.loop.call_at(deadline, self._fire)
