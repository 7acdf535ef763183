"""The exception tree of reconciler, and the located problems that desired-state errors carry.

::

    ReconcilerError                    base of every error we raise on purpose          retryable
    ├── DesiredStateError              the desired state is invalid (fix the commit)     no
    ├── SourceError                    a revision or folder cannot be read as desired    no
    │   │                              state (unknown revision, not a repository, ...)
    │   └── PathNotFoundError          the desired-state path is not in the revision     no
    ├── SettingsError                  a setting cannot be used as given (a port in      no
    │                                  use, ...)
    ├── FetchError                     the remote could not be fetched                   yes
    │   └── RemoteNotFoundError        no such repository or branch (yes for a running   yes
    │                                  agent: it may appear; --once says so at once)
    ├── PublishError                   status could not be pushed                        yes
    ├── CommandError                   an outside command failed or timed out            yes
    ├── ObserveError                   a capability could not observe its world          yes, unless raised
    │                                                                                     with retryable=False
    └── ApplyError                     a capability could not change its world           yes, unless raised
                                                                                          with retryable=False

``retryable`` is what the agent reads to choose: a retryable failure leaves the resource ``Degraded`` and is tried
again with backoff; one that is not leaves it ``Stalled`` until the next revision (retrying cannot help). Any other
exception from a capability counts as retryable: the agent cannot know better.

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

    def __init__(self, message: str = "", *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


def is_retryable(error: BaseException) -> bool:
    """Whether trying again later may succeed; errors we did not raise on purpose are given the benefit."""
    return error.retryable if isinstance(error, ReconcilerError) else True


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


class PathNotFoundError(SourceError):
    """The desired-state path (``--path``) is not in the revision: a typo, or a commit that moved the folder. Never
    the same as an empty desired state."""


class SettingsError(ReconcilerError):
    """A setting (a flag or RECONCILER_* variable) cannot be used as given: the operator must change it."""


class FetchError(ReconcilerError):
    """The remote could not be fetched (unreachable, branch missing, authentication)."""

    retryable = True


class RemoteNotFoundError(FetchError):
    """The repository (``--repo``) or the branch (``--branch``) does not exist."""


class PublishError(ReconcilerError):
    """Status could not be pushed."""

    retryable = True


class CommandError(ReconcilerError):
    """A command could not be run, timed out, or failed; the message carries its stderr."""

    retryable = True


class ObserveError(ReconcilerError):
    """A capability could not observe the world of one resource."""

    retryable = True


class ApplyError(ReconcilerError):
    """A capability could not carry out a plan for one resource."""

    retryable = True
