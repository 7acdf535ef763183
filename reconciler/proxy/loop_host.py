"""Runs an ``Engine`` inside an asyncio loop: the engine's epoll is one more readable descriptor for the loop.

The engine keeps its own timers (connect timeouts, idle sweeps, refused clients); one loop timer is armed for
the earliest of them, so the loop wakes only when something is due.
"""

from __future__ import annotations

import asyncio

from reconciler.proxy.engine import Engine


class LoopHost:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.engine = Engine(loop.time)
        self._timer: asyncio.TimerHandle | None = None
        self.engine.on_earlier_deadline = self._arm
        loop.add_reader(self.engine.fileno(), self._ready)

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

    def close(self) -> None:
        self.loop.remove_reader(self.engine.fileno())
        if self._timer is not None:
            self._timer.cancel()
        self.engine.close()
