"""The capability contract: what the agent can enforce for one kind, generic over the resource type ``R``, the
facts type ``F`` its observation yields, the value type ``V`` its plans carry and the state type ``S`` it keeps
per resource.

A capability observes the world for a resource (``observe``, returning typed facts and the status summary),
plans purely (``plan``: from the resource, the facts and the state; the functional core lives in
``reconciler/planning``) and carries out exactly the target plans that passed the safety gate (``apply``,
idempotent, from what the plan carries). ``forget`` removes what it made for a resource that left the desired
state. The per-resource state is the framework's (``capabilities/state``): the agent creates it, hands it to
each step, persists, restores and drops it; a capability keeps no dictionary of its resources, and reads the
states of all of them (for metrics and routes) through ``states``. Its lifecycle is its own: ``start`` and
``close`` around the agent's run, its metric collectors and its extra HTTP routes. The agent knows none of them
by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar

from aiohttp import web
from prometheus_client.registry import Collector

from reconciler.capabilities.state import NoState
from reconciler.model import DesiredState
from reconciler.model.common import Resource
from reconciler.planning.plan import Change, TargetPlan

R = TypeVar("R", bound=Resource)
F = TypeVar("F")
V = TypeVar("V")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Observed(Generic[F]):
    """What a capability saw for one resource: facts for its planner, a summary for the status document, and
    ``degraded`` (reason, message) when the world works less well than desired although everything was applied
    (an app with no healthy target): the resource is then Degraded, without being retried.

    ``summary`` is committed to the status branch, so it holds only what changes meaning (a tier, the live set,
    an error); ``details`` (timings, counts: different at every observation) are shown in /status and the state
    dir's status, beside the summary, and never committed: a steady world makes no status commit."""

    facts: F
    summary: Mapping[str, Any] = field(default_factory=dict)
    degraded: tuple[str, str] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class Capability(ABC, Generic[R, F, V, S]):
    resource_type: ClassVar[type[Resource]]
    state_type: ClassVar[type[Any]] = NoState  # S: a dataclass the framework keeps per resource
    state_version: ClassVar[int] = 1  # of the state's JSON form; an older one is read through ``upgrade_state``
    enforces: ClassVar[bool] = True  # False: configuration other resources use (removing it all is not guarded)
    # every resource's state, by name: read-only here (set by the framework that owns them)
    states: Mapping[str, S] = MappingProxyType({})

    def new_state(self) -> S:
        """The state of a resource seen for the first time."""
        state: S = self.state_type()
        return state

    @classmethod
    def upgrade_state(cls, version: int, part: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The ``{name: record}`` of this kind's part of an older state file (``version`` below
        ``state_version``), in today's form; None: that version cannot be read (its state is dropped)."""
        return None

    def narrow(self, resource: Resource) -> R:
        """The resource as this capability's type (the agent hands each capability only its own kind)."""
        if not isinstance(resource, self.resource_type):
            raise TypeError(f"{type(self).__name__} was given a {resource.KIND}")
        return resource  # type: ignore[return-value]  # checked against resource_type, which is R

    def use(self, desired: DesiredState) -> None:
        """The node's desired state that came into force, before any pass at its revision: for kinds whose
        resources name others (a gateway enforces allow-lists). Most capabilities need only their resource."""

    # --- the cycle -------------------------------------------------------------------------------------------

    def observe_interval(self, resource: R) -> timedelta | None:
        """How often the resource's world is observed again on its own clock (None: only with a revision)."""
        return None

    def observe_timeout(self, resource: R) -> float | None:
        """Longest one observation may take (None: the agent's default)."""
        return None

    @abstractmethod
    async def observe(self, resource: R, state: S) -> Observed[F]:
        """What the world is for ``resource``; what must be remembered until the next pass is written to
        ``state`` (the framework's, for this resource only)."""

    @abstractmethod
    def plan(self, resource: R, facts: F, state: S, *, now: float) -> Sequence[TargetPlan[V]]:
        """Pure: no I/O, no attribute written. Each target plan carries everything ``apply`` needs."""

    @abstractmethod
    async def apply(self, resource: R, target: TargetPlan[V], state: S) -> None:
        """Carry out ``target`` (the plan the safety gate saw), recording in ``state`` what it made; raise
        ApplyError (or any error) when it fails."""

    @abstractmethod
    async def forget(self, name: str, state: S | None) -> None:
        """Remove what was made for resource ``name`` of this kind; ``state`` is its last (None when this agent
        never had one). Called also by an agent that never held the resource (its state file says an earlier run
        made it): what to remove is found in the world."""

    async def removal(self, name: str) -> Sequence[Change[Any]]:
        """What ``forget(name)`` would remove, as changes people read in the plan; nothing by default (what the
        capability runs in-process stops with it)."""
        return ()

    # --- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Called once before the first reconcile of a run."""

    async def close(self, deadline: float) -> None:
        """Stop everything this capability runs, by ``deadline`` (the event loop's clock)."""

    def collectors(self) -> Sequence[Collector]:
        """Prometheus collectors read at scrape time, on the event loop: they show what is in memory."""
        return ()

    async def before_scrape(self) -> None:
        """Read what the collectors show that takes I/O (in a thread), just before they are collected."""

    def routes(self) -> Sequence[web.RouteDef]:
        """Extra HTTP routes served on the agent's API."""
        return ()


class ConfigurationOnly(Capability[Resource, None, None, NoState]):
    """For kinds that other resources reference and that have nothing of their own to enforce."""

    resource_type = Resource
    enforces = False

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def observe(self, resource: Resource, state: NoState) -> Observed[None]:
        return Observed(None, {"referencedBy": "other resources"})

    def plan(self, resource: Resource, facts: None, state: NoState, *, now: float) -> Sequence[TargetPlan[None]]:
        return ()

    async def apply(self, resource: Resource, target: TargetPlan[None], state: NoState) -> None:
        raise TypeError("a configuration-only kind has no targets")

    async def forget(self, name: str, state: NoState | None) -> None:
        return None


AnyCapability = Capability[Any, Any, Any, Any]
