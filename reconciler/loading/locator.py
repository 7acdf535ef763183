"""Turns (file, document, field path) into a located :class:`Problem`.

Files are read fast without positions; the first problem in a file re-reads it with positions (once) so that
every message can name ``file:line:col``. Field paths are shown as ``spec.entries[3].ip``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.errors import Problem, Severity
from reconciler.loading.yaml_reader import YamlDocument, YamlError, YamlLimits, read_yaml

PathElement = str | int


def format_path(path: Sequence[PathElement]) -> str:
    text = ""
    for element in path:
        text += f"[{element}]" if isinstance(element, int) else (f".{element}" if text else str(element))
    return text


@dataclass(frozen=True, slots=True)
class DocRef:
    """One document of one file, and the kind/name it declares (as far as it could be read)."""

    file: str
    index: int
    kind: str = ""
    name: str = ""


class Locator:
    """Locates paths in documents, re-reading each file with positions at most once."""

    def __init__(self, contents: dict[str, bytes], limits: YamlLimits) -> None:
        self._contents = contents
        self._limits = limits
        self._located: dict[str, list[YamlDocument]] = {}

    def document(self, file: str, index: int) -> YamlDocument | None:
        if file not in self._located:
            try:
                text = self._contents[file].decode("utf-8-sig")
                self._located[file] = read_yaml(text, located=True, limits=self._limits)
            except (YamlError, KeyError, UnicodeDecodeError):
                self._located[file] = []
        documents = self._located[file]
        return documents[index] if index < len(documents) else None

    def position(self, ref: DocRef, path: Sequence[PathElement], *, at_key: bool = False) -> tuple[int, int]:
        document = self.document(ref.file, ref.index)
        if document is None or document.positions is None:
            return (1, 1)
        (line, column), _ = document.positions.locate(document.data, tuple(path), at_key=at_key)
        return line, column

    def data(self, ref: DocRef) -> Any:
        document = self.document(ref.file, ref.index)
        return document.data if document else None

    def problem(
        self,
        ref: DocRef,
        path: Sequence[PathElement],
        message: str,
        *,
        severity: Severity = Severity.ERROR,
        at_key: bool = False,
    ) -> Problem:
        line, column = self.position(ref, path, at_key=at_key)
        return Problem(
            file=ref.file,
            line=line,
            column=column,
            message=message,
            kind=ref.kind,
            name=ref.name,
            path=format_path(path),
            severity=severity,
        )
