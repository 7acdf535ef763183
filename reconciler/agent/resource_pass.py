"""One pass over one resource: observe -> plan -> gate -> apply -> observe again, and what it ended as.

A failing observer or applier affects only its own resource: a retryable failure ends the pass as ``RETRY``
(``Degraded``, retried with backoff), one that is not (``retryable = False``) as ``HELD`` (``Stalled`` until the
next revision); a plan the safety gate holds ends it as ``GATED`` (``Stalled``, not retried until the revision or
what it observes changes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.agent.backoff import Backoff
from reconciler.agent.metrics import Metrics
from reconciler.agent.resource_states import ResourceStates
from reconciler.capabilities.registry import AnyCapability
from reconciler.errors import is_retryable
from reconciler.model.common import Resource
from reconciler.planning import gate
from reconciler.planning.plan import TargetPlan
from reconciler.settings import AgentSettings
from reconciler.status import conditions as cond
from reconciler.status.conditions import Condition
from reconciler.system.clock import Clock

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (kind, name)


class PassResult(StrEnum):
    """How one pass over one resource ended, and so what happens next."""

    DONE = "done"  # applied, nothing to do, validated only, or a dry run
    DEGRADED = "degraded"  # applied, but the world works less well than desired (not retried)
    GATED = "gated"  # held by the safety gate (not retried: the plan would be held again)
    RETRY = "retry"  # a retryable failure: try again after a backoff
    HELD = "held"  # not retryable: no more passes until the next revision

    @property
    def failed(self) -> bool:
        return self in (PassResult.GATED, PassResult.RETRY, PassResult.HELD)


@dataclass
class PassOutcome:
    """One pass over one resource."""

    conditions: tuple[Condition, ...]
    observations: dict[str, object] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)  # shown, never committed (Observed.details)
    targets: list[TargetPlan[Any]] = field(default_factory=list)
    result: PassResult = PassResult.DONE

    @property
    def failed(self) -> bool:
        return self.result.failed


@dataclass(eq=False)
class Slot:
    """One resource in force: the newest desired version of it and what its last pass found."""

    resource: Resource
    revision: str
    capability: AnyCapability | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    again: bool = False  # a pass was asked for while one ran
    outcome: PassOutcome | None = None
    outcome_revision: str | None = None
    held: str | None = None  # the revision at which a non-retryable failure stopped further passes
    gated: str = ""  # the checksum of the target plan the safety gate holds (logged once per plan)
    approved: set[str] = field(default_factory=set)  # target plan checksums an operator let through
    applied: str | None = None  # the revision of this resource's last pass that applied everything it planned
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=60.0))
    retry: asyncio.TimerHandle | None = None

    @property
    def key(self) -> Key:
        return (self.resource.KIND, self.resource.metadata.name)

    @property
    def label(self) -> str:
        return f"{self.resource.KIND}/{self.resource.metadata.name}"

    def ended(self, result: PassResult) -> bool:
        return self.outcome is not None and self.outcome.result is result

    def approve(self, checksum: str, *, whole: bool) -> bool:
        """Let this slot's held target plans with ``checksum`` (all of them when ``whole``: the node's plan was
        approved) through the gate once; whether any was."""
        if self.outcome is None or not self.ended(PassResult.GATED):
            return False
        chosen = {t.checksum for t in self.outcome.targets if whole or t.checksum == checksum}
        self.approved |= chosen
        return bool(chosen)


class ResourcePass:
    """Runs one pass over a slot's resource through its capability, each observation bounded by a timeout and
    all observations together by a concurrency limit."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        clock: Clock,
        metrics: Metrics,
        states: ResourceStates,
        observe_timeout: float,
        concurrency: int,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.states = states
        self.observe_timeout = observe_timeout
        self.limit = asyncio.Semaphore(concurrency)

    async def _observe(self, slot: Slot, capability: AnyCapability, resource: Any, state: Any, timeout: float) -> Any:
        async with self.limit:
            started = self.clock.monotonic()
            try:
                return await asyncio.wait_for(capability.observe(resource, state), timeout)
            finally:
                self.metrics.observe_seconds.labels(slot.resource.KIND).observe(self.clock.monotonic() - started)

    async def run(self, slot: Slot) -> PassOutcome:
        """The pass; any exception it raises is a bug in a capability's plan (the caller records it)."""
        capability = slot.capability
        if capability is None:
            message = f"this agent does not enforce {slot.resource.KIND} yet; the resource is validated only"
            return PassOutcome(cond.degraded("NotEnforced", message))
        resource = capability.narrow(slot.resource)
        state = self.states.of(*slot.key)
        timeout = capability.observe_timeout(resource) or self.observe_timeout
        try:
            observed = await self._observe(slot, capability, resource, state, timeout)
        except Exception as exc:  # a failing observer degrades only its own resource
            return self.failure(slot, "ObserveFailed", "observer", "observe failed", exc, timeout=timeout)
        outcome = PassOutcome(cond.ready("Applied"), dict(observed.summary), dict(observed.details))
        outcome.targets = list(capability.plan(resource, observed.facts, state, now=self.clock.now()))
        held = self._held(slot, resource, outcome.targets)
        if held:
            outcome.conditions = cond.stalled("SafetyGate", held)
            outcome.result = PassResult.GATED
            return outcome
        slot.gated = ""
        if self.settings.dry_run:
            changes = sum(len(t.changes) for t in outcome.targets)
            outcome.conditions = cond.ready("DryRun", f"dry run: {changes} planned change(s) not applied")
            return outcome
        changing = [t for t in outcome.targets if t.changes]
        for done, target in enumerate(changing):
            try:
                await capability.apply(resource, target, state)
            except Exception as exc:  # a failing applier degrades only its own resource
                # an apply is not a transaction: say that what is in force is partly this revision
                part = (
                    f"applied part-way at revision {slot.revision[:12]} ({done} of {len(changing)} target(s) "
                    f"done, {target.target} failed: what is in force is partly this revision)"
                )
                failure = self.failure(
                    slot, "ApplyFailed", "applier", f"apply failed target={target.target}", exc, context=part
                )
                failure.targets = outcome.targets
                failure.observations, failure.details = outcome.observations, outcome.details
                return failure
            if slot.approved:
                slot.approved.discard(target.checksum)
            log.info("applied resource=%s target=%s changes=%d", slot.label, target.target, len(target.changes))
        if changing:
            # The status should show the world after the change, not before it.
            try:
                observed = await self._observe(slot, capability, resource, state, timeout)
                outcome.observations, outcome.details = dict(observed.summary), dict(observed.details)
            except Exception as exc:  # the change is applied; the next observation will catch up
                log.info("observe after apply failed resource=%s error=%s", slot.label, exc)
        if observed.degraded is not None:
            outcome.conditions = cond.degraded(*observed.degraded)
            outcome.result = PassResult.DEGRADED
        return outcome

    def _held(self, slot: Slot, resource: Resource, targets: Sequence[TargetPlan[Any]]) -> str:
        """Why the safety gate holds one of ``targets`` (empty when it lets them all through)."""
        for target in targets:
            # a checksum hashes the whole target plan (100,000 members: ~0.3 s): only when someone approved one
            forced = self.settings.force or (bool(slot.approved) and target.checksum in slot.approved)
            decision = gate.check(target, max_percent=resource.spec.safety.maxChangePercent, forced=forced)
            if not decision.allowed:
                message = f"{decision.message}, or approve plan {target.checksum[:16]} (POST /plan/approve)"
                if slot.gated != target.checksum:  # once per plan, not once per observation
                    log.warning("plan held by the safety gate resource=%s message=%s", slot.label, message)
                slot.gated = target.checksum
                return message
        return ""

    def failure(
        self,
        slot: Slot,
        reason: str,
        component: str,
        doing: str,
        exc: BaseException,
        *,
        timeout: float = 0.0,
        context: str = "",
    ) -> PassOutcome:
        self.metrics.errors.labels(component).inc()
        message = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError) and timeout:
            message = f"timed out after {timeout:g}s"
        if context:
            message = f"{message}; {context}"
        if is_retryable(exc):
            log.warning("%s resource=%s error=%s", doing, slot.label, message)
            return PassOutcome(cond.degraded(reason, message), result=PassResult.RETRY)
        log.warning("%s resource=%s error=%s (not retried before the next revision)", doing, slot.label, message)
        return PassOutcome(cond.stalled(reason, message), result=PassResult.HELD)
