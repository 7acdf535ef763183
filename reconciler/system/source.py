"""The two seams of the desired-state repository: where desired state comes from, and where status goes.

They are separate because they are separate things: ``plan`` and ``apply`` read a folder and publish nothing; an
agent reads one branch and publishes to another (and, later, may publish somewhere else entirely).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from reconciler.model.source_tree import SourceTree


class DesiredStateSource(Protocol):
    """Blocking calls; the agent runs them in a worker thread."""

    def fetch(self) -> str:
        """Fetch the desired-state branch; return its head revision."""
        ...

    def tree_at(self, revision: str, *, max_file_bytes: int) -> SourceTree:
        """The desired-state folder as of ``revision``."""
        ...

    def verify(self, revision: str) -> str | None:
        """None when ``revision`` is signed by an allowed key, else why not."""
        ...

    def files_at(self, revision: str) -> str | None:
        """A folder on this machine holding the desired-state folder's files as of ``revision`` (what relative
        paths in resources name: an nginx config, a zone template), or None when there is none."""
        ...


class StatusPublisher(Protocol):
    def publish(self, files: Mapping[str, bytes], *, prefix: str, message: str) -> str | None:
        """Make ``prefix`` hold exactly ``files``; the new commit, or None if nothing changed."""
        ...
