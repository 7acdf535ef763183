"""A folder as a desired-state source, for ``reconciler plan`` and ``reconciler apply`` on a working tree.

It speaks the git seam's Protocol: its one "revision" is ``working-tree``, and it publishes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from reconciler.loading.tree import SourceTree
from reconciler.system.files import read_source_tree

WORKING_TREE = "working-tree"


class FolderSource:
    def __init__(self, root: Path) -> None:
        self.root = root

    def fetch(self) -> str:
        return WORKING_TREE

    def tree_at(self, revision: str, *, max_file_bytes: int) -> SourceTree:
        return read_source_tree(self.root, display_root=str(self.root), max_file_bytes=max_file_bytes)

    def verify(self, revision: str) -> str | None:
        return None

    def publish(self, files: Mapping[str, bytes], *, prefix: str, message: str) -> str | None:
        return None
