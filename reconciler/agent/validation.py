"""``reconciler validate``: read a tree (and its base revision), load it, check protected entries."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import Problem, Severity
from reconciler.loading.loader import LoadOptions, LoadResult, load_tree
from reconciler.loading.protected import check_protected
from reconciler.system.files import read_source_tree
from reconciler.system.git import read_tree_at_revision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one tree."""

    root: str
    result: LoadResult
    problems: tuple[Problem, ...]

    @property
    def valid(self) -> bool:
        return not any(p.severity is Severity.ERROR for p in self.problems)


def validate_path(path: Path, *, base: str | None = None, options: LoadOptions | None = None) -> ValidationReport:
    """Validate the tree at ``path``; with ``base``, also against the protected entries at that revision.

    Raises :class:`~reconciler.errors.SourceError` when the tree or the revision cannot be read.
    """
    options = options or LoadOptions()
    tree = read_source_tree(path, display_root=str(path), max_file_bytes=options.max_file_bytes)
    result = load_tree(tree, options)
    problems = list(result.problems)
    if base is not None:
        base_tree = read_tree_at_revision(path, base, max_file_bytes=options.max_file_bytes)
        base_result = load_tree(base_tree, options)
        problems.extend(check_protected(base_result, result, base))
    log.info("validated root=%s documents=%d problems=%d base=%s", tree.root, result.documents, len(problems), base)
    return ValidationReport(tree.root, result, tuple(sorted(problems, key=lambda p: p.sort_key)))
