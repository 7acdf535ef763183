"""A plan is immutable data: per target, the ordered changes that turn what is into what should be.

A *target* is one thing an applier writes as a whole (an ipset, a route table, a zone file, a proxy's backend
set), named by a typed key (a ``Target``: the applier dispatches on its type, never on its text). Its ``size`` is
how many members it has now, which the safety gate compares the changes with.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class Action(StrEnum):
    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class Change(Generic[V]):
    """One member added, changed or removed. ``before``/``after`` are the typed values the applier carries out;
    their ``str()`` is what people read. ``member`` is False for a change of settings rather than of a member,
    which the safety gate does not count."""

    key: str
    action: Action
    before: V | None = None
    after: V | None = None
    member: bool = True

    @property
    def shown_before(self) -> str | None:
        return None if self.before is None else str(self.before)

    @property
    def shown_after(self) -> str | None:
        return None if self.after is None else str(self.after)

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "action": self.action.value, "before": self.shown_before, "after": self.shown_after}


class Target:
    """The key of what one target plan writes as a whole: a frozen dataclass per kind of target (an app, a set, a
    family's chains), whose ``str()`` is the name people read, plans show and approvals hash."""

    __slots__ = ()

    def __str__(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Whole(Target):
    """A resource's one target: its zones, its routes, what a removed one made."""

    name: str

    def __str__(self) -> str:
        return self.name


_ORDER = attrgetter("key", "action")


def _ordered(changes: Sequence[Change[V]]) -> tuple[Change[V], ...]:
    keys = [c.key for c in changes]
    if all(map(operator.lt, keys, keys[1:])):  # built in order by the planner: checking costs far less
        return tuple(changes)
    return tuple(sorted(changes, key=_ORDER))


@dataclass(frozen=True, slots=True)
class TargetPlan(Generic[V]):
    """The changes to one target of one resource: exactly what the safety gate saw and the applier carries out."""

    kind: str
    name: str
    target: Target
    size: int
    changes: tuple[Change[V], ...] = ()
    # What the applier feeds a tool for this target (``ipset restore`` lines, ``iptables-restore`` input), shown
    # by ``plan --format json``; derived from the changes, so not part of what the checksum covers.
    payload: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", _ordered(self.changes))

    @property
    def resource(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def destructive(self) -> int:
        """Members removed or changed: what the safety gate counts."""
        return sum(1 for c in self.changes if c.action is not Action.ADD and c.member)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "target": str(self.target),
            "size": self.size,
            "changes": [c.as_dict() for c in self.changes],
        }

    @property
    def checksum(self) -> str:
        """sha256 of the canonical JSON of this target's plan (what an operator approves)."""
        return _checksum(self.as_dict())


@dataclass(frozen=True, slots=True)
class Plan:
    """Every target plan of one reconcile, in a deterministic order."""

    revision: str
    node: str
    targets: tuple[TargetPlan[Any], ...] = field(default=())

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.targets, key=lambda t: (t.kind, t.name, str(t.target))))
        object.__setattr__(self, "targets", ordered)

    @property
    def changes(self) -> int:
        return sum(len(t.changes) for t in self.targets)

    @property
    def empty(self) -> bool:
        return self.changes == 0

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "node": self.node, "targets": [t.as_dict() for t in self.targets]}

    @property
    def checksum(self) -> str:
        """sha256 of the canonical JSON of the plan: the same plan always has the same checksum."""
        return _checksum(self.as_dict())


def _checksum(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
