"""nginx configuration files read with crossplane, nginx's own parser in Python (comments, quoting, ``include``
with globs, relative to the including file's folder), never with regexes over the text.

Pool files are usually fragments (``conf.d/003-proxies.conf`` holds bare ``server {}`` blocks), so directives are
not checked against the context they would have inside nginx.conf.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crossplane  # type: ignore[import-untyped]

from reconciler.errors import ObserveError


@dataclass(frozen=True)
class Directive:
    """One directive: its name, arguments, block (children) and where it was written."""

    name: str
    args: tuple[str, ...]
    block: tuple[Directive, ...] | None
    file: str
    line: int


def _directive(raw: dict[str, Any], file: str, files: list[dict[str, Any]]) -> list[Directive]:
    if raw["directive"] == "include":  # an include stands for the directives of the files it matched
        return [d for index in raw.get("includes", []) for d in _file(files[index], files)]
    block = raw.get("block")
    children = tuple(d for child in block for d in _directive(child, file, files)) if block is not None else None
    return [Directive(raw["directive"], tuple(raw.get("args", [])), children, file, int(raw.get("line") or 0))]


def _file(entry: dict[str, Any], files: list[dict[str, Any]]) -> list[Directive]:
    return [d for raw in entry.get("parsed", []) for d in _directive(raw, entry["file"], files)]


def read_nginx_config(path: Path) -> tuple[Directive, ...]:
    """The directives of ``path`` with every include resolved in place; ObserveError naming file and line when
    nginx would not accept the file (or it is missing)."""
    payload = crossplane.parse(str(path), check_ctx=False, catch_errors=True)
    errors = [{"file": entry["file"], **e} for entry in payload["config"] for e in entry.get("errors", [])]
    errors = errors or payload.get("errors", [])
    if errors:
        first = errors[0]
        where = f"{first.get('file', path)}:{first['line']}" if first.get("line") else str(first.get("file", path))
        raise ObserveError(f"{where}: {first['error']}")
    files: list[dict[str, Any]] = payload["config"]
    return tuple(_file(files[0], files))
