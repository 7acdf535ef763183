"""The node's status: its conditions from the revision admitted (or refused) and every slot's last pass, its
problems, and each resource's status; conditions keep their transition times through the state file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.agent.metrics import Metrics
from reconciler.agent.resource_pass import Key, PassOutcome, PassResult, Slot
from reconciler.errors import Problem, Severity
from reconciler.settings import AgentSettings
from reconciler.status import conditions as cond
from reconciler.status.conditions import Condition
from reconciler.status.documents import NodeStatus, ResourceStatus
from reconciler.status.state_file import SavedState
from reconciler.system.clock import Clock

NODE_KEY = "node"
# Problems listed in the node's status. A revision with thousands of warnings would otherwise make every status
# document (and commit) megabytes; `reconciler validate` in CI lists them all.
SHOWN_PROBLEMS = 50


def failed(slots: Mapping[Key, Slot]) -> tuple[str, ...]:
    """The resources whose last pass failed."""
    return tuple(s.label for _, s in sorted(slots.items()) if s.outcome is not None and s.outcome.failed)


def ended(slots: Mapping[Key, Slot], result: PassResult) -> tuple[str, ...]:
    """The resources whose last pass ended so."""
    return tuple(s.label for _, s in sorted(slots.items()) if s.ended(result))


@dataclass
class NodeView:
    settings: AgentSettings
    saved: SavedState
    clock: Clock
    metrics: Metrics
    problems: tuple[Problem, ...] = ()  # of the newest revision looked at
    stall: tuple[str, str] | None = None  # why it was refused: reason, message
    stopped_at: float | None = None  # set by the agent's stop, for its final status
    resources: dict[Key, ResourceStatus] = field(default_factory=dict)
    _relevant: tuple[tuple[Problem, ...], tuple[Problem, ...]] = ((), ())

    def _relevant_problems(self) -> tuple[Problem, ...]:
        """Errors when there are any, else warnings (computed once per loaded revision, not per pass)."""
        if self._relevant[0] is not self.problems:
            errors = tuple(p for p in self.problems if p.severity is Severity.ERROR)
            self._relevant = (self.problems, errors or self.problems)
        return self._relevant[1]

    def _current(self, slots: Mapping[Key, Slot], desired_revision: str | None) -> tuple[Condition, ...]:
        return self._refused() or self._failing(slots, desired_revision) or self._settled(slots, desired_revision)

    def _refused(self) -> tuple[Condition, ...]:
        """Stopped, or the newest revision refused (empty when neither)."""
        applied = self.saved.applied_revision
        if self.stopped_at is not None:
            left = f"revision {applied[:12]} stays applied" if applied else "no revision was applied"
            return cond.stopped(f"the agent stopped at {cond.timestamp(self.stopped_at)}; {left}, unwatched")
        if self.stall is not None:
            reason, message = self.stall
            if applied:
                message += f"; revision {applied[:12]} stays in force"
            return cond.stalled(reason, message)
        return ()

    def _failing(self, slots: Mapping[Key, Slot], desired_revision: str | None) -> tuple[Condition, ...]:
        """Some resources' last pass failed (empty when none did)."""
        applied = self.saved.applied_revision
        failing = failed(slots)
        if failing and set(held := ended(slots, PassResult.GATED)) == set(failing):
            return cond.stalled("SafetyGate", f"{len(held)} resource(s) held by the safety gate: {', '.join(held)}")
        if failing:
            message = f"{len(failing)} resource(s) failing: {', '.join(failing)}"
            if desired_revision is not None and desired_revision != applied:
                whole = sum(1 for s in slots.values() if s.applied == desired_revision)
                message += (
                    f"; revision {desired_revision[:12]} is in force for {whole} of {len(slots)} "
                    f"resource(s), in part for the failing ones"
                    + (f"; {applied[:12]} is the last revision applied whole" if applied else "")
                )
            return cond.degraded("ResourcesFailing", message)
        return ()

    def _settled(self, slots: Mapping[Key, Slot], desired_revision: str | None) -> tuple[Condition, ...]:
        applied = self.saved.applied_revision
        if degraded := ended(slots, PassResult.DEGRADED):
            return cond.degraded("ResourcesDegraded", f"{len(degraded)} resource(s) degraded: {', '.join(degraded)}")
        if desired_revision is None:
            return (Condition("Ready", "Unknown", "Starting", "no desired state loaded yet"),)
        if self.settings.dry_run:
            return cond.ready("DryRun", "dry run: observed and planned, nothing on this machine was changed")
        return cond.ready("Applied", f"revision {applied[:12] if applied else '-'} applied")

    def record(self, slot: Slot, outcome: PassOutcome, revision: str) -> None:
        """A slot's pass ended: its outcome, its resource's status and conditions (and, unless a dry run, what
        it made and the revision it is now applied at)."""
        slot.outcome, slot.outcome_revision = outcome, revision
        kind, name = slot.key
        merged = cond.carry_over(self.saved.conditions.get(slot.label, ()), outcome.conditions, now=self.clock.now())
        self.saved.conditions[slot.label] = merged
        if not outcome.failed and not self.settings.dry_run:
            slot.applied = revision
        self.resources[slot.key] = ResourceStatus(
            kind, name, revision, merged, outcome.observations, outcome.details, applied_revision=slot.applied
        )
        if not self.settings.dry_run:  # a dry run makes nothing, so it records nothing to remove later
            self.saved.made.add(slot.label)
        self.metrics.set_conditions(kind, name, merged)

    def status(self, slots: Mapping[Key, Slot], desired_revision: str | None, *, record: bool = True) -> NodeStatus:
        """The node's status now. ``record`` merges its conditions into the saved history (not at start-up,
        where "Starting" would otherwise count as a transition and rewrite every transition time)."""
        current = self._current(slots, desired_revision)
        merged = cond.carry_over(self.saved.conditions.get(NODE_KEY, ()), current, now=self.clock.now())
        if record:
            self.saved.conditions[NODE_KEY] = merged
        self.metrics.set_conditions("Node", self.settings.node, merged)
        relevant = self._relevant_problems()
        return NodeStatus(
            node=self.settings.node,
            branch=self.settings.branch,
            applied_revision=self.saved.applied_revision,
            attempted_revision=self.saved.attempted_revision,
            dry_run=self.settings.dry_run,
            conditions=merged,
            problems=relevant[:SHOWN_PROBLEMS],
            resources=tuple(r for _, r in sorted(self.resources.items())),
            problems_not_shown=max(0, len(relevant) - SHOWN_PROBLEMS),
        )
