"""A folder as a desired-state source, for ``reconciler plan`` and ``reconciler apply`` on a working tree.

It is a ``DesiredStateSource`` whose one "revision" is ``working-tree``.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import PathNotFoundError
from reconciler.model.source_tree import SourceTree
from reconciler.system.files import read_source_tree

WORKING_TREE = "working-tree"


class FolderSource:
    def __init__(self, root: Path) -> None:
        self.root = root

    def fetch(self) -> str:
        return WORKING_TREE

    def tree_at(self, revision: str, *, max_file_bytes: int) -> SourceTree:
        if not self.root.exists():
            raise PathNotFoundError(f"path {self.root} does not exist")
        return read_source_tree(self.root, display_root=str(self.root), max_file_bytes=max_file_bytes)

    def verify(self, revision: str) -> str | None:
        return None

    def files_at(self, revision: str) -> str | None:
        return str(self.root)
