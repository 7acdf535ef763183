"""The state dir's files: the state file (revisions, conditions, what was made, the capabilities' parts) and the
status snapshot, written atomically when they changed; the previous good state file kept beside them, a damaged
one kept aside and shown, a write that fails retried and shown, never fatal."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.agent.metrics import Metrics
from reconciler.settings import AgentSettings
from reconciler.status.state_file import SavedState, StateFileError, decode
from reconciler.system.files import FileSystem

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
STATUS_FILE = "status.json"
PREVIOUS_STATE_FILE = "state.json.1"  # the state file as it was before the last write
DAMAGED_KEPT = 3


@dataclass(frozen=True)
class LoadedState:
    saved: SavedState
    content: bytes | None  # the good file's bytes, as read
    damaged: str | None = None  # why the state file could not be used, and what was done instead


def load_saved_state(settings: AgentSettings, files: FileSystem, now: float) -> LoadedState:
    """The state file; a damaged one is kept aside (never overwritten) and the previous good one used."""
    path = settings.state_dir / STATE_FILE
    content = files.read_bytes(path)
    if content is None:
        return LoadedState(SavedState(), None)
    try:
        return LoadedState(decode(content), content)
    except StateFileError as exc:
        why = f"{path} ({len(content)} bytes) is damaged: {exc}"
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = files.keep_aside(path, stamp, DAMAGED_KEPT)
    kept = f"kept as {aside.name}" if aside is not None else "left where it is"
    previous = files.read_bytes(settings.state_dir / PREVIOUS_STATE_FILE)
    try:
        restored = decode(previous) if previous is not None else None
    except StateFileError:
        restored = None
    done = f"restored from {PREVIOUS_STATE_FILE}" if restored is not None else "started without saved state"
    log.error("state file damaged path=%s reason=%s %s; %s", path, why.split(": ", 1)[-1], kept, done)
    return LoadedState(restored or SavedState(), previous if restored is not None else None, f"{why}; {kept}; {done}")


class StateStore:
    """Reads the state file once at start and writes it (with the status snapshot) when either changed."""

    def __init__(self, settings: AgentSettings, files: FileSystem, metrics: Metrics, now: float) -> None:
        self.settings = settings
        self.files = files
        self.metrics = metrics
        loaded = load_saved_state(settings, files, now)
        self.saved = loaded.saved
        self.damaged = loaded.damaged  # shown as StateRestored=False until the next good write
        self.error: str | None = None  # why the state file cannot be written now (a full disk, say)
        self._previous = loaded.content
        self._written: tuple[bytes, bytes] | None = None
        if loaded.damaged is not None:
            metrics.errors.labels("state").inc()
            metrics.condition.labels("Node", settings.node, "StateRestored").set(0)

    def write(self, state: bytes, snapshot: bytes) -> None:
        """Write the state file and the status snapshot, atomically, when they changed."""
        if self._written == (state, snapshot):
            return
        previous = self._written[0] if self._written is not None else self._previous
        written = [] if previous is None or previous == state else [(PREVIOUS_STATE_FILE, previous)]
        try:  # and the previous good file beside it: one damaged write loses at most one interval
            for name, content in ((STATE_FILE, state), (STATUS_FILE, snapshot), *written):
                path = self.settings.state_dir / name
                self.files.write_atomic(path, content)
        except OSError as exc:  # the old files stay whole (atomic writes); the next write tries again
            self._failed(f"cannot write {path}: {exc.strerror or exc}")
            return
        if self.error is not None:
            log.info("state file written again")
            self.error = None
        self.metrics.condition.labels("Node", self.settings.node, "StateSaved").set(1)
        if self.damaged is not None:  # this write's snapshot still says so; the next one will not
            self.damaged = None
            self.metrics.condition.labels("Node", self.settings.node, "StateRestored").set(1)
        self._written = (state, snapshot)

    def _failed(self, error: str) -> None:
        self.metrics.errors.labels("state").inc()
        if error != self.error:  # once per change, not once per pass
            log.error("state file not written error=%s", error)
        self.error = error
        self.metrics.condition.labels("Node", self.settings.node, "StateSaved").set(0)
