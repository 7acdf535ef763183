"""Files: reading a desired-state tree from a folder, atomic writes, and the FileSystem seam of the agent."""

from __future__ import annotations

import grp
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from reconciler.errors import SourceError
from reconciler.model.source_tree import SourceFile, SourceTree, is_desired_state_file, is_skipped


def _read_limited(path: Path, limit: int) -> tuple[bytes, int]:
    """At most ``limit`` + 1 bytes (enough for the loader to tell that a file is too big without reading it
    all), and the file's real size, for the message that says so."""
    with path.open("rb") as handle:
        return handle.read(limit + 1), os.fstat(handle.fileno()).st_size


def _link_text(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "a place"


def read_source_tree(root: Path, *, display_root: str | None = None, max_file_bytes: int) -> SourceTree:
    """Every desired-state YAML file under ``root`` (sorted, so runs are reproducible) and the other files' paths.

    Symbolic links that lead out of the tree are ignored: a desired-state repository may not read the machine.
    """
    if not root.is_dir():
        raise SourceError(f"{root}: not a directory (give the folder that holds the desired state)")
    shown = display_root if display_root is not None else str(root)
    resolved_root = root.resolve()
    files: list[SourceFile] = []
    others: set[str] = set()
    unread: list[tuple[str, str]] = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            full = Path(folder) / name
            relpath = full.relative_to(root).as_posix()
            display = f"{shown.rstrip('/')}/{relpath}" if shown not in ("", ".") else relpath
            wanted = is_desired_state_file(relpath)
            if not full.resolve().is_relative_to(resolved_root):
                if wanted:
                    unread.append((display, f"a symbolic link to {_link_text(full)}, outside the folder"))
                continue
            if not full.is_file():
                if wanted:
                    dangling = full.is_symlink() and not full.exists()
                    why = f"a symbolic link to {_link_text(full)}, which does not exist" if dangling else ""
                    unread.append((display, why or "not a regular file"))
                continue
            if wanted:
                files.append(SourceFile(display, relpath, *_read_limited(full, max_file_bytes)))
            elif not is_skipped(relpath):
                others.add(relpath)
    return SourceTree(shown, tuple(files), frozenset(others), tuple(unread))


def read_source_files(paths: list[Path], *, max_file_bytes: int) -> SourceTree:
    """Given YAML files (a pre-commit hook's list) as one partial tree; each shown as given."""
    files = tuple(SourceFile(str(path), path.as_posix(), *_read_limited(path, max_file_bytes)) for path in paths)
    return SourceTree(", ".join(str(p) for p in paths), files)


def write_atomic(path: Path, content: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, rename: readers see the old or the new file, whole."""
    write_checked(path, content, lambda _: None)


def write_checked(
    path: Path, content: bytes, check: Callable[[Path], None], *, mode: int | None = None, gid: int | None = None
) -> None:
    """Write to a temporary file in the same folder, fsync, run ``check(temporary path)``, rename: readers see the
    old or the new file, whole; when ``check`` raises, the old file stays as it was. ``mode`` and ``gid`` are set
    before the rename (a temporary file is 0600: without them, the new file is readable by its owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if gid is not None:
                os.fchown(handle.fileno(), -1, gid)
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        check(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def file_permissions(path: Path) -> tuple[int, int] | None:
    """A file's permission bits and group; None: absent."""
    try:
        found = path.stat()
    except OSError:
        return None
    return stat.S_IMODE(found.st_mode), found.st_gid


def set_permissions(path: Path, mode: int, gid: int | None) -> None:
    if gid is not None:
        os.chown(path, -1, gid)
    os.chmod(path, mode)


def group_id(group: str) -> int:
    """A group name or number as a gid; KeyError when this machine has no such group."""
    if group.isdigit():
        return int(group)
    return grp.getgrnam(group).gr_gid


def temporary_directory(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A folder removed when the ``with`` block ends (``reconciler plan`` keeps no state)."""
    return tempfile.TemporaryDirectory(prefix=prefix)


def ensure_directory(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def file_signature(path: Path) -> tuple[int, int, float] | None:
    """What tells that a file changed: inode (replaced by a rename), size and modification time; None: absent."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_ino, found.st_size, found.st_mtime


def read_bytes_if_exists(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class FileSystem(Protocol):
    """The files the agent keeps for itself (state file, status snapshot)."""

    def read_bytes(self, path: Path) -> bytes | None:
        """The content, or None when the file does not exist."""
        ...

    def write_atomic(self, path: Path, content: bytes) -> None: ...

    def ensure_directory(self, path: Path) -> None: ...

    def keep_aside(self, path: Path, stamp: str, keep: int) -> Path | None:
        """Rename ``path`` to ``<path>.damaged-<stamp>`` (the newest ``keep`` such files stay); the new name."""
        ...


class LocalFileSystem:
    def read_bytes(self, path: Path) -> bytes | None:
        return read_bytes_if_exists(path)

    def write_atomic(self, path: Path, content: bytes) -> None:
        write_atomic(path, content)

    def ensure_directory(self, path: Path) -> None:
        ensure_directory(path)

    def keep_aside(self, path: Path, stamp: str, keep: int) -> Path | None:
        aside = path.with_name(f"{path.name}.damaged-{stamp}")
        try:
            path.rename(aside)
        except OSError:
            return None
        kept = sorted(path.parent.glob(f"{path.name}.damaged-*"))
        for old in kept[: max(0, len(kept) - keep)]:
            old.unlink(missing_ok=True)
        return aside


class ReadOnlyFileSystem(LocalFileSystem):
    """Reads another process's state (``reconciler plan --state-dir``) and writes nothing."""

    def write_atomic(self, path: Path, content: bytes) -> None:
        return None

    def ensure_directory(self, path: Path) -> None:
        return None

    def keep_aside(self, path: Path, stamp: str, keep: int) -> Path | None:
        return None
