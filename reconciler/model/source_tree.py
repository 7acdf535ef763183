"""The desired-state tree as data: file names and bytes, read by ``reconciler.system`` and loaded here.

Keeping the bytes in a value means the loader does no I/O: the working tree, a git revision and a test all hand
it the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

YAML_SUFFIXES = (".yaml", ".yml")
SKIPPED_FOLDERS = ("status",)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One YAML file: ``path`` as shown to the user, ``relpath`` inside the tree, and its bytes."""

    path: str
    relpath: str
    content: bytes
    size: int = -1  # the file's real size when ``content`` was cut at the loader's limit (-1: len(content))


@dataclass(frozen=True, slots=True)
class SourceTree:
    """The YAML files of a desired-state tree, and the relative paths of every other file (for references)."""

    root: str
    files: tuple[SourceFile, ...]
    other_paths: frozenset[str] = field(default_factory=frozenset)
    # YAML files that were not read, as shown to the user, and why: a symbolic link leading out of the tree (a
    # desired-state repository may not read the machine, nor another folder of the repository), or not a file
    unread: tuple[tuple[str, str], ...] = ()


def is_skipped(relpath: str) -> bool:
    """``status/`` (agents write there) and hidden files and folders are not part of the desired state."""
    parts = relpath.split("/")
    return parts[0] in SKIPPED_FOLDERS or any(p.startswith(".") for p in parts)


def is_desired_state_file(relpath: str) -> bool:
    """``*.yaml``/``*.yml`` at any depth, unless skipped."""
    return relpath.endswith(YAML_SUFFIXES) and not is_skipped(relpath)
