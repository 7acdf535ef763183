"""The EgressRoute capability: on a client, the public address space routed via the gateway.

Observing lists our routes (our protocol number only); planning computes the public prefixes and the changes
(``planning/routes``); applying replaces or deletes exactly the routes the plan names. A route deleted or changed
by hand is put back at the next observation; removing the resource removes every route of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from reconciler.capabilities.base import Capability, Observed
from reconciler.capabilities.context import CapabilityContext
from reconciler.capabilities.state import NoState
from reconciler.model.egress_route import EgressRoute
from reconciler.model.internal_ranges import DEFAULT_RANGES
from reconciler.planning.plan import Action, Change, TargetPlan
from reconciler.planning.routes import Route, plan_routes
from reconciler.system.routes import RouteTable

DRIFT_INTERVAL = timedelta(seconds=30)


class EgressRouteCapability(Capability[EgressRoute, dict[str, str], Route, NoState]):
    resource_type = EgressRoute

    def __init__(self, table: RouteTable) -> None:
        self.table = table

    @classmethod
    def from_context(cls, context: CapabilityContext) -> EgressRouteCapability:
        return cls(context.routes)

    def observe_interval(self, resource: EgressRoute) -> timedelta | None:
        return DRIFT_INTERVAL

    async def observe(self, resource: EgressRoute, state: NoState) -> Observed[dict[str, str]]:
        installed = await self.table.ours()
        hops = {f"ipv{family}": str(hop) for family, hop in sorted(resource.spec.next_hops().items())}
        return Observed(installed, {"nextHops": hops, "routes": len(installed)})

    def plan(
        self, resource: EgressRoute, facts: dict[str, str], state: NoState, *, now: float
    ) -> Sequence[TargetPlan[Route]]:
        spec = resource.spec
        internal = spec.internalRanges if spec.internalRanges is not None else DEFAULT_RANGES.networks
        return plan_routes(
            resource.KIND,
            resource.metadata.name,
            hops=spec.next_hops(),
            kept_off=[*internal, *spec.exclude],
            installed=facts,
        )

    async def apply(self, resource: EgressRoute, target: TargetPlan[Route], state: NoState) -> None:
        for change in target.changes:
            if change.action is Action.REMOVE:
                await self.table.delete(change.key)
            elif change.after is not None:
                await self.table.replace(change.after.prefix, change.after.via)

    async def removal(self, name: str) -> Sequence[Change[Any]]:
        routes = await self.table.ours()
        return [Change(prefix, Action.REMOVE, before=f"{prefix} via {routes[prefix]}") for prefix in sorted(routes)]

    async def forget(self, name: str, state: NoState | None) -> None:
        for prefix in sorted(await self.table.ours()):
            await self.table.delete(prefix)
