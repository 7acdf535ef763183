"""Validation, the use case ``reconciler validate`` (CI, a pre-commit hook), the console's edits and the agent's
admission of a revision share: read a tree (and its base revision), load it, check protected entries, report."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from reconciler.errors import PathNotFoundError, Problem, SettingsError, Severity
from reconciler.loading.loader import FileCache, LoadOptions, LoadResult, load_tree
from reconciler.loading.protected import check_protected
from reconciler.model.source_tree import SourceTree
from reconciler.system.files import read_source_files, read_source_tree
from reconciler.system.git import read_tree_at_revision

log = logging.getLogger(__name__)

NO_DOCUMENTS = "no documents found (pass --allow-empty if an empty tree is intended)"


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one tree."""

    root: str
    result: LoadResult
    problems: tuple[Problem, ...]

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    def adding(self, more: Iterable[Problem]) -> ValidationReport:
        return replace(self, problems=tuple(sorted((*self.problems, *more), key=lambda p: p.sort_key)))


def validate_paths(
    paths: Sequence[Path],
    *,
    base: str | None = None,
    options: LoadOptions | None = None,
    allow_empty: bool = False,
    today: date | None = None,
) -> ValidationReport:
    """Validate one folder (the whole tree: every check) or files (a pre-commit hook's list: every check that
    does not need the rest of the tree). With ``base``, also the protected entries at that revision.

    Raises :class:`~reconciler.errors.PathNotFoundError` for a path that does not exist, ``SettingsError`` for
    ``base`` with anything but one folder, and ``SourceError`` when a revision cannot be read.
    """
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise PathNotFoundError(f"{', '.join(missing)} does not exist")
    if len(paths) == 1 and paths[0].is_dir():
        return validate_path(paths[0], base=base, options=options, allow_empty=allow_empty, today=today)
    if base is not None:
        raise SettingsError("--base compares a whole tree: give one folder, not files")
    options = replace(options or LoadOptions(), partial=True, today=today)
    files = [f for p in paths for f in (sorted(p.rglob("*.y*ml")) if p.is_dir() else [p])]
    tree = read_source_files(files, max_file_bytes=options.max_file_bytes)
    return _documents_required(validate_tree(tree, options), allow_empty)


def validate_tree(tree: SourceTree, options: LoadOptions, *, cache: FileCache | None = None) -> ValidationReport:
    """Load a tree already read and report its problems, sorted; with ``cache``, files unchanged since the last
    load are not parsed again (the agent's admission of each revision)."""
    result = load_tree(tree, options, cache=cache)
    return ValidationReport(tree.root, result, ()).adding(result.problems)


def _documents_required(report: ValidationReport, allow_empty: bool) -> ValidationReport:
    """An empty tree is a problem of its own, unless allowed or something else is wrong already."""
    if report.result.documents == 0 and not allow_empty and report.valid:
        return report.adding([Problem(report.root, 0, 0, NO_DOCUMENTS)])
    return report


def validate_path(
    path: Path,
    *,
    base: str | None = None,
    options: LoadOptions | None = None,
    allow_empty: bool = True,
    today: date | None = None,
) -> ValidationReport:
    """Validate the tree at ``path``; with ``base``, also against the protected entries at that revision.

    Raises :class:`~reconciler.errors.SourceError` when the tree or the revision cannot be read.
    """
    options = replace(options or LoadOptions(), today=today)
    tree = read_source_tree(path, display_root=str(path), max_file_bytes=options.max_file_bytes)
    report = validate_tree(tree, options)
    if base is not None:
        base_tree = read_tree_at_revision(path, base, max_file_bytes=options.max_file_bytes)
        base_result = load_tree(base_tree, options)
        report = report.adding(check_protected(base_result, report.result, base))
    log.info("validated root=%s documents=%d base=%s", tree.root, report.result.documents, base)
    return _documents_required(report, allow_empty)
