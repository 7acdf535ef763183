"""The stop signals (SIGINT, SIGTERM) taken by one thread, and blocked in every other thread and every child.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group, and a service manager may send SIGTERM
to every process of the service: git, proxy workers still importing their modules, an afterChange command would
each die mid-way (a broken pipe in the final publish, a KeyboardInterrupt traceback, a worker restarted during the
shutdown). A signal mask is inherited by the threads a thread starts and kept across fork and exec, so blocking
both signals before the agent starts anything keeps them from every process below it; one thread waits for them
with ``sigtimedwait`` and hands each to the agent once. Children end on the agent's word, or SIGKILL at a timeout.

Two things undo a mask, so both are covered: multiprocessing's resource tracker unblocks both signals in the
thread that first starts it (``start_process_helpers`` starts it before the mask is set), and a Python handler
in the main thread hands a signal that still reaches it to the same callback.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from multiprocessing import resource_tracker
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
POLL = 0.2  # how soon the waiting thread sees that it may end


class StopSignals:
    """``with StopSignals(on_signal):`` blocks SIGINT and SIGTERM in this thread (and so in everything it starts
    later) and calls ``on_signal(signum)`` from a thread of its own for each one; the mask is put back on exit."""

    def __init__(self, on_signal: Callable[[int], None]) -> None:
        self.on_signal = on_signal
        self._done = threading.Event()
        self._previous: set[int | signal.Signals] = set()
        self._handlers: dict[int, Any] = {}
        self._thread = threading.Thread(target=self._wait, name="stop-signals", daemon=True)

    def _wait(self) -> None:
        while not self._done.is_set():
            found = signal.sigtimedwait(STOP_SIGNALS, POLL)
            if found is not None:
                self.on_signal(found.si_signo)

    def _deliver(self, signum: int, frame: FrameType | None) -> None:
        self.on_signal(signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._handlers = {signum: signal.signal(signum, self._deliver) for signum in STOP_SIGNALS}
        self._previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join(timeout=POLL * 5)
        signal.pthread_sigmask(signal.SIG_SETMASK, self._previous)
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)


def start_process_helpers() -> None:
    """Start multiprocessing's resource tracker now: started later, from a thread with the stop signals blocked, it
    would unblock them there (and in the proxy workers spawned after it)."""
    resource_tracker.ensure_running()
