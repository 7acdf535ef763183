"""A plan is immutable data: per target, the ordered changes that turn what is into what should be.

A *target* is one thing an applier writes as a whole (an ipset, a route table, a zone file, a proxy's backend
set). Its ``size`` is how many members it has now, which the safety gate compares the changes with.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True, order=True)
class Change:
    """One member added, changed or removed; ``before``/``after`` are short human-readable values."""

    key: str
    action: Action
    before: str | None = None
    after: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "action": self.action.value, "before": self.before, "after": self.after}


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """The changes to one target of one resource."""

    kind: str
    name: str
    target: str
    size: int
    changes: tuple[Change, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", tuple(sorted(self.changes)))

    @property
    def resource(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def destructive(self) -> int:
        """Members removed or changed: what the safety gate counts."""
        return sum(1 for c in self.changes if c.action is not Action.ADD)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "target": self.target,
            "size": self.size,
            "changes": [c.as_dict() for c in self.changes],
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """Every target plan of one reconcile, in a deterministic order."""

    revision: str
    node: str
    targets: tuple[TargetPlan, ...] = field(default=())

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.targets, key=lambda t: (t.kind, t.name, t.target)))
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
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
