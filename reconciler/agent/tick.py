"""The reconcile: load -> validate -> (per resource, concurrently) observe -> plan -> gate -> apply -> report.

- A revision is loaded whole from a commit. If it fails validation (or its signature is not allowed) nothing of
  it is applied: the last applied desired state stays in force and the node is ``Stalled`` with the located
  problems. The next valid revision is applied as usual.
- Each resource has a slot of its own: its passes (observe, plan, gate, apply) never overlap, and run
  concurrently with every other resource's under a concurrency limit, each observation with its own timeout.
  A pass starts for every resource when a revision is loaded, and for one resource when its own observe clock
  fires or its retry is due: a slow or hanging observer delays no other resource. A pass asked for while one is
  in flight is run once more when it ends (with the newest desired state), never twice at the same time.
- A failing observer or applier affects only its own resource. A retryable failure leaves it ``Degraded`` and
  retries with backoff; one that is not (``retryable = False``) leaves it ``Stalled`` until the next revision; a
  plan the safety gate holds leaves it ``Stalled`` and is not retried until the revision or what it observes
  changes.
- ``lastAppliedRevision`` moves only when every resource of a revision was reconciled at that revision without
  failure; ``lastAttemptedRevision`` always names the newest revision looked at.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from reconciler.agent.admission import RevisionAdmission
from reconciler.agent.forgetting import Forgetting
from reconciler.agent.metrics import Metrics
from reconciler.agent.node_view import NodeView, failed
from reconciler.agent.resource_pass import Key, PassOutcome, PassResult, ResourcePass, Slot
from reconciler.agent.resource_states import ResourceStates
from reconciler.capabilities.registry import AnyCapability
from reconciler.errors import Problem
from reconciler.loading.loader import LoadOptions
from reconciler.model import DesiredState
from reconciler.model.common import Resource
from reconciler.planning.plan import Plan
from reconciler.settings import AgentSettings
from reconciler.status.state_file import SavedState
from reconciler.system.clock import Clock
from reconciler.system.source import DesiredStateSource

log = logging.getLogger(__name__)


class TickOutcome(StrEnum):
    APPLIED = "applied"  # a revision (or a change of the world) was applied
    UNCHANGED = "unchanged"  # nothing to do
    STALLED = "stalled"  # the revision was refused; the last good one stays in force
    DEGRADED = "degraded"  # some resource failed to observe, pass the gate, or apply
    WAITING = "waiting"  # no desired state yet


@dataclass(frozen=True, slots=True)
class TickResult:
    outcome: TickOutcome
    plan: Plan
    failed: tuple[str, ...] = ()
    stall: tuple[str, str] | None = None  # why the newest revision was refused: reason, message
    not_enforced: tuple[str, ...] = ()  # resources of kinds this agent only validates
    resources: int | None = None  # resources in force for this node; None before any desired state


class Reconciler:
    """Holds the desired state in force and reconciles it, one slot per resource: which revision is admitted is
    ``admission``'s, a pass over one resource is ``passes``', the node's status is ``view``'s, what resources that
    left made is ``forgetting``'s; this schedules the slots' passes (one at a time per slot, retries with backoff)."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        source: DesiredStateSource,
        clock: Clock,
        capabilities: Mapping[str, AnyCapability],
        metrics: Metrics,
        saved: SavedState,
        states: ResourceStates | None = None,
        load_options: LoadOptions | None = None,
        observe_timeout: float = 30.0,
        concurrency: int = 16,
        on_pass: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.capabilities = capabilities
        self.metrics = metrics
        self.saved = saved
        self.states = states or ResourceStates(capabilities)
        self.admission = RevisionAdmission(
            settings,
            source=source,
            capabilities=capabilities,
            metrics=metrics,
            load_options=load_options or LoadOptions(),
        )
        self.passes = ResourcePass(
            settings,
            clock=clock,
            metrics=metrics,
            states=self.states,
            observe_timeout=observe_timeout,
            concurrency=concurrency,
        )
        self.view = NodeView(settings, saved, clock, metrics)
        self.forgetting = Forgetting(
            settings, capabilities=capabilities, states=self.states, saved=saved, view=self.view, metrics=metrics
        )
        self.on_pass = on_pass  # told once per loop turn in which passes ended (the agent persists its state)
        self.lock = asyncio.Lock()  # one load at a time
        self.fetched_revision: str | None = None
        self.attempted: str | None = None  # the newest revision loaded (or refused) by this process
        self.desired: DesiredState | None = None
        self.desired_revision: str | None = None
        self.plan = Plan("", settings.node)
        self.slots: dict[Key, Slot] = {}
        self.ready = False
        self.background = False  # passes started by revisions and clocks run as tasks (the running agent)
        self._tasks: set[asyncio.Task[None]] = set()
        self._summary_pending = False
        self.status = self.view.status(self.slots, None, record=False)

    @property
    def stall(self) -> tuple[str, str] | None:
        return self.view.stall

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self.view.problems

    # --- loading ---------------------------------------------------------------------------------------------

    async def _load(self, revision: str) -> None:
        """Make ``revision`` the desired state in force, or record why it cannot be."""
        self.attempted = revision
        self.saved.attempted_revision = revision
        admitted = await self.admission.admit(revision, self.desired)
        self.view.problems, self.view.stall = admitted.problems, admitted.stall
        if admitted.desired is None:
            return
        self.desired, self.desired_revision = admitted.desired, revision
        for capability in self.capabilities.values():
            capability.use(admitted.desired)

    async def _load_newest(self) -> None:
        """Load what is new (the applied revision first after a restart) and bring the slots up to date."""
        async with self.lock:
            applied = self.saved.applied_revision
            if self.attempted is None and applied is not None:
                # After a restart, the revision that was in force is in force again before anything newer is tried.
                await self._load(applied)
            revision = self.fetched_revision
            if revision is not None and revision != self.attempted:
                await self._load(revision)
            if self.desired is None or self.desired_revision is None:
                self.status = self.view.status(self.slots, None)
                return
            await self._update_slots(self.desired, self.desired_revision)

    async def _update_slots(self, desired: DesiredState, revision: str) -> None:
        wanted: dict[Key, Resource] = {(r.KIND, r.metadata.name): r for r in desired}
        for key, resource in wanted.items():
            slot = self.slots.get(key)
            if slot is None:
                self.slots[key] = Slot(resource, revision, self.capabilities.get(resource.KIND))
            elif slot.revision != revision:
                slot.resource, slot.revision, slot.held = resource, revision, None
                slot.backoff.reset()
        self.forgetting.begin()
        for key in sorted(set(self.slots) - set(wanted)):
            slot = self.slots[key]
            if await self.forgetting.forget(key, slot.capability):
                if slot.retry is not None:
                    slot.retry.cancel()
                del self.slots[key]
        await self.forgetting.orphans({f"{kind}/{name}" for kind, name in [*wanted, *self.slots]})

    def _record(self, slot: Slot, outcome: PassOutcome, revision: str) -> None:
        self.view.record(slot, outcome, revision)
        if outcome.result is PassResult.HELD:
            slot.held = revision
        if outcome.result is PassResult.RETRY:
            self._schedule_retry(slot)
        elif not outcome.failed:
            slot.backoff.reset()

    def _schedule_retry(self, slot: Slot) -> None:
        delay = slot.backoff.next()
        log.info("resource retry resource=%s retry_in=%.1fs", slot.label, delay)
        if not self.background:
            return  # one pass (--once, plan): the caller decides
        if slot.retry is not None:
            slot.retry.cancel()
        slot.retry = asyncio.get_running_loop().call_later(delay, self._start, slot.key)

    async def _run(self, slot: Slot) -> None:
        """Passes over one slot until none is pending; a second caller only asks for one more."""
        if slot.lock.locked():
            slot.again = True
            return
        async with slot.lock:
            while True:
                slot.again = False
                if slot.held == slot.revision:
                    return
                revision = slot.revision
                try:
                    outcome = await self.passes.run(slot)
                except Exception as exc:  # a bug in a capability's plan: still only this resource
                    outcome = self.passes.failure(slot, "InternalError", "internal", "pass failed", exc)
                if self.slots.get(slot.key) is slot:  # not forgotten meanwhile
                    self._record(slot, outcome, revision)
                    self._changed()
                if not slot.again:
                    return

    def _changed(self) -> None:
        """A pass ended: in the running agent, the node's view is brought up to date once per turn of the loop
        (a revision ends many passes at once); ``tick()`` does it once at its end."""
        if self.background and not self._summary_pending:
            self._summary_pending = True
            asyncio.get_running_loop().call_soon(self._summarise)

    def _start(self, key: Key) -> None:
        slot = self.slots.get(key)
        if slot is None or (slot.lock.locked() and slot.again):
            return
        task = asyncio.get_running_loop().create_task(self._run(slot), name=f"reconcile {slot.label}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- entry points ------------------------------------------------------------------------------------------

    async def tick(self) -> TickResult:
        """Load what is new, then one pass over every resource, all awaited (``--once``, ``plan``, tests)."""
        started = self.clock.monotonic()
        before = self.saved.applied_revision
        await self._load_newest()
        if self.desired is not None:
            slots = list(self.slots.values())
            for slot in (s for s in slots if s.capability is None):
                await self._run(slot)  # nothing to wait for: no task needed
            await asyncio.gather(*(self._run(slot) for slot in slots if slot.capability is not None))
        result = self._result(before)
        self.metrics.reconcile_seconds.labels(result.outcome.value).observe(self.clock.monotonic() - started)
        return result

    async def dispatch(self) -> None:
        """Load what is new and start a pass over every resource without waiting for them (the running agent)."""
        await self._load_newest()
        for key in list(self.slots):
            self._start(key)
        if not self.slots:
            self._summarise()

    async def reconcile_one(self, key: Key) -> None:
        """One pass over one resource, awaited (benchmarks, tests)."""
        slot = self.slots.get(key)
        if slot is not None:
            await self._run(slot)

    def observe(self, key: Key) -> None:
        """A resource's own clock fired: a pass over that resource only (skipped while held)."""
        slot = self.slots.get(key)
        if slot is not None and slot.held != slot.revision:
            self._start(key)

    async def settle(self) -> None:
        """Wait until no pass is in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def mark_stopped(self) -> None:
        """The final status says the node stopped, and when (a stopped node is not Ready)."""
        self.view.stopped_at = self.clock.now()
        self.status = self.view.status(self.slots, self.desired_revision)

    async def close(self) -> None:
        """Cancel passes in flight (shutdown)."""
        for slot in self.slots.values():
            if slot.retry is not None:
                slot.retry.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- the node's view -------------------------------------------------------------------------------------

    def approve(self, checksum: str) -> list[str]:
        """Let the held plan(s) with ``checksum`` through the gate once: the node's whole plan (``GET /plan``) or
        one target's. The resources that will be reconciled now; empty when no held plan has that checksum."""
        whole = checksum == self.plan.checksum
        approved = [key for key, slot in sorted(self.slots.items()) if slot.approve(checksum, whole=whole)]
        for key in approved:
            self._start(key)
        return [self.slots[key].label for key in approved]

    def _summarise(self, *, notify: bool = True) -> None:
        """After passes: the plan, the applied revision and the node's status; ``notify`` tells ``on_pass`` (the
        agent persists), which ``tick()``'s caller does itself once the whole tick is over."""
        self._summary_pending = False
        targets = [t for s in self.slots.values() if s.outcome is not None for t in s.outcome.targets]
        self.plan = Plan(self.desired_revision or "", self.settings.node, (*self.forgetting.removals, *targets))
        complete = all(s.outcome_revision == self.desired_revision for s in self.slots.values())
        if self.desired_revision is not None and complete and not failed(self.slots):
            self.saved.applied_revision = self.desired_revision
            self.ready = True
            self.metrics.set_revision(self.desired_revision, self.settings.branch)
        self.status = self.view.status(self.slots, self.desired_revision)
        if notify and self.on_pass is not None:
            self.on_pass()

    def _result(self, before: str | None) -> TickResult:
        if self.desired is None or self.desired_revision is None:
            return TickResult(TickOutcome.STALLED if self.stall else TickOutcome.WAITING, self.plan, stall=self.stall)
        self._summarise(notify=False)
        failing = failed(self.slots)
        if self.stall:
            verdict = TickOutcome.STALLED
        elif failing:
            verdict = TickOutcome.DEGRADED
        elif self.plan.empty and before == self.desired_revision:
            verdict = TickOutcome.UNCHANGED
        else:
            verdict = TickOutcome.APPLIED
        not_enforced = tuple(s.label for _, s in sorted(self.slots.items()) if s.capability is None)
        return TickResult(verdict, self.plan, failing, self.stall, not_enforced, len(self.slots))
