"""The capability interface: what the agent can enforce, one per kind, behind one small Protocol.

A capability observes the world for a resource (``observe``, side-effect free), plans purely (``plan``: the
functional core lives in ``reconciler/planning``) and applies target plans (``apply``, idempotent). ``forget``
removes what the agent made for a resource that left the desired state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from reconciler.model.common import Resource
from reconciler.planning.plan import TargetPlan


@dataclass(frozen=True, slots=True)
class Observed:
    """What a capability saw for one resource: facts for its planner and a summary for the status document."""

    facts: Any = None
    summary: Mapping[str, Any] | None = None


class Capability(Protocol):
    kind: str

    def observe_interval(self, resource: Resource) -> timedelta | None:
        """How often the resource's world should be observed again (None: only on reconcile)."""
        ...

    async def observe(self, resource: Resource) -> Observed: ...

    def plan(self, resource: Resource, observed: Observed, *, now: float) -> list[TargetPlan]: ...

    async def apply(self, resource: Resource, target: TargetPlan) -> None: ...

    async def forget(self, kind: str, name: str) -> None: ...


class ConfigurationOnly:
    """For kinds that other resources reference and that have nothing of their own to enforce."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def observe_interval(self, resource: Resource) -> timedelta | None:
        return None

    async def observe(self, resource: Resource) -> Observed:
        return Observed(summary={"referencedBy": "other resources"})

    def plan(self, resource: Resource, observed: Observed, *, now: float) -> list[TargetPlan]:
        return []

    async def apply(self, resource: Resource, target: TargetPlan) -> None:
        raise AssertionError("a configuration-only kind has no targets")

    async def forget(self, kind: str, name: str) -> None:
        return None
