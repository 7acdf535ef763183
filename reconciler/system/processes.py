"""Processes this one started: found in /proc (by parent), so that a stop that must end at once can take every
one of them along, whoever started it (proxy workers, a git that hangs)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

PROC = Path("/proc")


def _parent(stat: str) -> int:
    # the command name (field 2) is in parentheses and may contain spaces: fields after the last ')' are plain
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid``, children before grandchildren."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            parents[int(entry.name)] = _parent((entry / "stat").read_text())
    found: list[int] = []
    wanted = {pid}
    while wanted:
        children = [child for child, parent in parents.items() if parent in wanted and child not in found]
        found += children
        wanted = set(children)
    return found


def kill_descendants(pid: int | None = None) -> int:
    """SIGKILL every process below ``pid`` (default: this one); how many were signalled."""
    signalled = 0
    for child in descendants(pid if pid is not None else os.getpid()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signal.SIGKILL)
            signalled += 1
    return signalled
