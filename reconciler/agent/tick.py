"""The tick: load -> validate -> observe -> plan -> gate -> apply -> report, transactional per revision.

- A revision is loaded whole from a commit. If it fails validation (or its signature is not allowed) nothing of
  it is applied: the last applied desired state stays in force and the node is ``Stalled`` with the located
  problems. The next valid revision is applied as usual.
- Each resource is observed, planned and applied on its own: a failing observer or applier makes only that
  resource ``Degraded``; the others proceed.
- ``lastAppliedRevision`` moves only when every resource of a revision was applied; ``lastAttemptedRevision``
  always names the newest revision looked at.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.agent.metrics import Metrics
from reconciler.appliers.base import Capability
from reconciler.errors import Problem, ReconcilerError, Severity
from reconciler.loading.loader import FileCache, LoadOptions, load_tree
from reconciler.model import DesiredState
from reconciler.model.common import Resource
from reconciler.planning import gate
from reconciler.planning.plan import Plan, TargetPlan
from reconciler.settings import AgentSettings
from reconciler.status import conditions as cond
from reconciler.status.conditions import Condition
from reconciler.status.documents import NodeStatus, ResourceStatus
from reconciler.status.state_file import SavedState
from reconciler.system.clock import Clock
from reconciler.system.git import Git

log = logging.getLogger(__name__)

NODE_KEY = "node"


@dataclass(frozen=True, slots=True)
class TickResult:
    outcome: str  # applied | unchanged | stalled | degraded | waiting
    plan: Plan
    failed: tuple[str, ...] = ()


@dataclass
class _ResourceOutcome:
    conditions: tuple[Condition, ...]
    observations: dict[str, object] = field(default_factory=dict)
    targets: list[TargetPlan] = field(default_factory=list)
    failed: bool = False


class Reconciler:
    """Holds the desired state in force and runs ticks. Not thread-safe: one tick at a time (``lock``)."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        git: Git,
        clock: Clock,
        capabilities: Mapping[str, Capability],
        metrics: Metrics,
        saved: SavedState,
        load_options: LoadOptions | None = None,
        observe_timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.git = git
        self.clock = clock
        self.capabilities = capabilities
        self.metrics = metrics
        self.saved = saved
        self.load_options = load_options or LoadOptions()
        self.observe_timeout = observe_timeout
        self.lock = asyncio.Lock()
        self.file_cache = FileCache()
        self.fetched_revision: str | None = None
        self.attempted: str | None = None  # the newest revision loaded (or refused) by this process
        self.desired: DesiredState | None = None
        self.desired_revision: str | None = None
        self.problems: tuple[Problem, ...] = ()
        self.stall: tuple[str, str] | None = None
        self.plan = Plan("", settings.node)
        self.resources: dict[tuple[str, str], ResourceStatus] = {}
        self.ready = False
        self.status = self._node_status(record=False)

    # --- loading ---------------------------------------------------------------------------------------------

    async def _load(self, revision: str) -> None:
        """Make ``revision`` the desired state in force, or record why it cannot be."""
        self.attempted = revision
        self.saved.attempted_revision = revision
        self.problems, self.stall = (), None
        if self.settings.verify_signatures:
            refusal = await asyncio.to_thread(self.git.verify, revision)
            if refusal is not None:
                self.stall = ("UnsignedRevision", refusal)
                self.metrics.errors.labels("signature").inc()
                log.warning("revision refused revision=%s reason=%s", revision[:12], refusal)
                return
        try:
            tree = await asyncio.to_thread(self.git.tree_at, revision, max_file_bytes=self.load_options.max_file_bytes)
        except ReconcilerError as exc:
            self.stall = ("SourceUnreadable", str(exc))
            self.metrics.errors.labels("source").inc()
            return
        result = await asyncio.to_thread(load_tree, tree, self.load_options, cache=self.file_cache)
        self.problems = result.problems
        errors = result.errors
        if errors:
            self.stall = ("InvalidDesiredState", f"{len(errors)} error(s); first: {errors[0]}")
            self.metrics.errors.labels("validation").inc()
            log.warning("revision invalid revision=%s errors=%d first=%s", revision[:12], len(errors), errors[0])
            return
        self.desired = result.state.for_node(self.settings.node)
        self.desired_revision = revision
        log.info("revision loaded revision=%s resources=%d", revision[:12], len(self.desired))

    # --- one resource ----------------------------------------------------------------------------------------

    async def _reconcile_resource(self, resource: Resource, capability: Capability | None) -> _ResourceOutcome:
        if capability is None:
            message = f"this agent does not enforce {resource.KIND} yet; the resource is validated only"
            return _ResourceOutcome(cond.degraded("NotEnforced", message))
        try:
            observed = await asyncio.wait_for(capability.observe(resource), self.observe_timeout)
        except Exception as exc:  # a failing observer degrades only its own resource
            self.metrics.errors.labels("observer").inc()
            log.warning("observe failed resource=%s/%s error=%s", resource.KIND, resource.metadata.name, exc)
            return _ResourceOutcome(cond.degraded("ObserveFailed", str(exc) or type(exc).__name__), failed=True)
        outcome = _ResourceOutcome(cond.ready("Applied"), dict(observed.summary or {}))
        outcome.targets = capability.plan(resource, observed, now=self.clock.now())
        for target in outcome.targets:
            decision = gate.check(target, max_percent=resource.spec.safety.maxChangePercent, forced=self.settings.force)
            if not decision.allowed:
                outcome.conditions = cond.stalled("SafetyGate", decision.message)
                outcome.failed = True
                return outcome
        if self.settings.dry_run:
            changes = sum(len(t.changes) for t in outcome.targets)
            outcome.conditions = cond.ready("DryRun", f"dry run: {changes} planned change(s) not applied")
            return outcome
        for target in outcome.targets:
            if not target.changes:
                continue
            try:
                await capability.apply(resource, target)
            except Exception as exc:  # a failing applier degrades only its own resource
                self.metrics.errors.labels("applier").inc()
                log.warning("apply failed resource=%s target=%s error=%s", target.resource, target.target, exc)
                outcome.conditions = cond.degraded("ApplyFailed", f"{target.target}: {exc}")
                outcome.failed = True
                return outcome
            log.info("applied resource=%s target=%s changes=%d", target.resource, target.target, len(target.changes))
        if any(t.changes for t in outcome.targets):
            # The status should show the world after the change, not before it.
            try:
                after = await asyncio.wait_for(capability.observe(resource), self.observe_timeout)
                outcome.observations = dict(after.summary or {})
            except Exception as exc:  # the change is applied; the next observation will catch up
                log.info(
                    "observe after apply failed resource=%s/%s error=%s", resource.KIND, resource.metadata.name, exc
                )
        return outcome

    async def _forget_removed(self, current: set[tuple[str, str]]) -> None:
        for kind, name in sorted(set(self.resources) - current):
            capability = self.capabilities.get(kind)
            if capability is not None and not self.settings.dry_run:
                try:
                    await capability.forget(kind, name)
                except Exception as exc:  # retried on the next tick; the resource stays listed
                    self.metrics.errors.labels("applier").inc()
                    log.warning("forget failed resource=%s/%s error=%s", kind, name, exc)
                    continue
            del self.resources[(kind, name)]
            self.saved.conditions.pop(f"{kind}/{name}", None)
            self.metrics.forget_resource(kind, name)

    # --- the tick --------------------------------------------------------------------------------------------

    async def tick(self) -> TickResult:
        async with self.lock:
            started = self.clock.monotonic()
            result = await self._tick()
            self.metrics.reconcile_seconds.labels(result.outcome).observe(self.clock.monotonic() - started)
            return result

    async def _tick(self) -> TickResult:
        applied = self.saved.applied_revision
        if self.attempted is None and applied is not None:
            # After a restart, the revision that was in force is in force again before anything newer is tried.
            await self._load(applied)
        revision = self.fetched_revision
        if revision is not None and revision != self.attempted:
            await self._load(revision)
        if self.desired is None or self.desired_revision is None:
            self.status = self._node_status()
            return TickResult("stalled" if self.stall else "waiting", self.plan)
        now = self.clock.now()
        outcomes: dict[tuple[str, str], _ResourceOutcome] = {}
        for resource in self.desired:
            key = (resource.KIND, resource.metadata.name)
            outcomes[key] = await self._reconcile_resource(resource, self.capabilities.get(resource.KIND))
        await self._forget_removed(set(outcomes))
        targets = [t for o in outcomes.values() for t in o.targets]
        self.plan = Plan(self.desired_revision, self.settings.node, tuple(targets))
        for (kind, name), outcome in outcomes.items():
            previous = self.saved.conditions.get(f"{kind}/{name}", ())
            merged = cond.carry_over(previous, outcome.conditions, now=now)
            self.saved.conditions[f"{kind}/{name}"] = merged
            self.resources[(kind, name)] = ResourceStatus(
                kind, name, self.desired_revision, merged, outcome.observations
            )
            self.metrics.set_conditions(kind, name, merged)
        failed = tuple(f"{k}/{n}" for (k, n), o in outcomes.items() if o.failed)
        before = self.saved.applied_revision
        if not failed:
            self.saved.applied_revision = self.desired_revision
            self.ready = True
            self.metrics.set_revision(self.desired_revision, self.settings.branch)
        self.status = self._node_status(failed)
        if self.stall:
            verdict = "stalled"
        elif failed:
            verdict = "degraded"
        else:
            verdict = "unchanged" if self.plan.empty and before == self.desired_revision else "applied"
        return TickResult(verdict, self.plan, failed)

    # --- status ----------------------------------------------------------------------------------------------

    def _node_status(self, failed: tuple[str, ...] = (), *, record: bool = True) -> NodeStatus:
        """The node's status now. ``record`` merges its conditions into the saved history (not at start-up,
        where "Starting" would otherwise count as a transition and rewrite every transition time)."""
        applied = self.saved.applied_revision
        if self.stall is not None:
            reason, message = self.stall
            if applied:
                message += f"; revision {applied[:12]} stays in force"
            current = cond.stalled(reason, message)
        elif failed:
            current = cond.degraded("ResourcesFailing", f"{len(failed)} resource(s) failing: {', '.join(failed)}")
        elif self.desired_revision is None:
            current = (Condition("Ready", "Unknown", "Starting", "no desired state loaded yet"),)
        elif self.settings.dry_run:
            current = cond.ready("DryRun", "dry run: observed and planned, nothing on this machine was changed")
        else:
            current = cond.ready("Applied", f"revision {applied[:12] if applied else '-'} applied")
        merged = cond.carry_over(self.saved.conditions.get(NODE_KEY, ()), current, now=self.clock.now())
        if record:
            self.saved.conditions[NODE_KEY] = merged
        self.metrics.set_conditions("Node", self.settings.node, merged)
        shown = tuple(p for p in self.problems if p.severity is Severity.ERROR) or self.problems
        return NodeStatus(
            node=self.settings.node,
            branch=self.settings.branch,
            applied_revision=applied,
            attempted_revision=self.saved.attempted_revision,
            dry_run=self.settings.dry_run,
            conditions=merged,
            problems=shown,
            resources=tuple(r for _, r in sorted(self.resources.items())),
        )
