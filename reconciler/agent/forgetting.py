"""What a resource that left the desired state made, shown in the plan and then removed by its capability."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from reconciler.agent.metrics import Metrics
from reconciler.agent.node_view import NodeView
from reconciler.agent.resource_pass import Key
from reconciler.agent.resource_states import ResourceStates
from reconciler.capabilities.registry import AnyCapability
from reconciler.planning.plan import Action, Change, TargetPlan, Whole
from reconciler.settings import AgentSettings
from reconciler.status.state_file import SavedState

log = logging.getLogger(__name__)


class Forgetting:
    """Removes what resources made once they leave; ``removals`` are the newest revision's, for the plan."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        capabilities: Mapping[str, AnyCapability],
        states: ResourceStates,
        saved: SavedState,
        view: NodeView,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.capabilities = capabilities
        self.states = states
        self.saved = saved
        self.view = view
        self.metrics = metrics
        self.removals: list[TargetPlan[Any]] = []

    def begin(self) -> None:
        """A new set of slots: the removals shown are those of this revision only."""
        self.removals = []

    async def orphans(self, held: set[str]) -> None:
        """Remove what earlier runs made for resources this process never held (a restart, run --once --force);
        ``held`` are the ``kind/name`` labels of the resources it holds."""
        for label in sorted(self.saved.made - held):
            kind, _, name = label.partition("/")
            await self.forget((kind, name), self.capabilities.get(kind))

    async def forget(self, key: Key, capability: AnyCapability | None) -> bool:
        """Remove what a resource that left the desired state made, after putting it in the plan; False when
        that failed (the resource stays listed, and it is tried again with the next revision or start). A dry run
        shows the removal and leaves the resource in the state file's ``made``: nothing was removed."""
        kind, name = key
        label = f"{kind}/{name}"
        if capability is not None:
            try:
                changes = tuple(await capability.removal(name))
            except Exception as exc:  # what it made cannot be listed: the removal is still shown, and made
                changes = (Change(label, Action.REMOVE, before=f"what it made (cannot be listed: {exc})"),)
            self.removals.append(TargetPlan(kind, name, Whole("removed"), len(changes), changes))
        if capability is not None and not self.settings.dry_run:
            try:
                await capability.forget(name, self.states.by_kind.get(kind, {}).get(name))
            except Exception as exc:  # retried with the next revision; the resource stays listed
                self.metrics.errors.labels("applier").inc()
                log.warning("forget failed resource=%s error=%s", label, exc)
                return False
            log.info("removed resource=%s changes=%d", label, len(changes))
        if not self.settings.dry_run:
            self.saved.made.discard(label)
            self.states.drop(kind, name)
        self.view.resources.pop(key, None)
        self.saved.conditions.pop(label, None)
        self.metrics.forget_resource(kind, name)
        return True
