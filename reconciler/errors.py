"""The exception tree of reconciler, and the located problems that desired-state errors carry.

::

    ReconcilerError                    base of every error we raise on purpose
    ├── DesiredStateError              the desired state is invalid; a retry cannot help (fix the commit)
    └── SourceError                    the desired state could not be read (missing path, unknown revision, ...)

Every desired-state problem names its place as ``file:line:col: Kind/name: field.path: message`` so that an
operator, an editor or a GitHub annotation can jump straight to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad a problem is: errors make the desired state invalid, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the desired state, with where it is (1-based line and column; 0 when unknown)."""

    file: str
    line: int
    column: int
    message: str
    kind: str = ""
    name: str = ""
    path: str = ""
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        parts = [f"{self.file}:{self.line}:{self.column}"]
        if self.kind:
            parts.append(f"{self.kind}/{self.name}" if self.name else self.kind)
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.message)


class ReconcilerError(Exception):
    """Base of every error reconciler raises on purpose."""

    retryable: bool = False


class DesiredStateError(ReconcilerError):
    """The desired state is invalid. Not retryable: the commit has to change."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(problems, key=lambda p: p.sort_key))
        errors = [p for p in self.problems if p.severity is Severity.ERROR]
        first = str(errors[0]) if errors else "no errors"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"invalid desired state: {first}{more}")


class SourceError(ReconcilerError):
    """The desired state could not be read: a missing directory, a path outside a repository, a bad revision."""
