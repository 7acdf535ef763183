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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from reconciler.agent.backoff import Backoff
from reconciler.agent.metrics import Metrics
from reconciler.agent.resource_states import ResourceStates
from reconciler.capabilities.registry import AnyCapability
from reconciler.errors import PathNotFoundError, Problem, ReconcilerError, Severity, is_retryable
from reconciler.loading.loader import FileCache, LoadOptions, load_tree
from reconciler.model import DesiredState
from reconciler.model.common import Resource
from reconciler.planning import gate
from reconciler.planning.plan import Action, Change, Plan, TargetPlan, Whole
from reconciler.settings import AgentSettings
from reconciler.status import conditions as cond
from reconciler.status.conditions import Condition
from reconciler.status.documents import NodeStatus, ResourceStatus
from reconciler.status.state_file import SavedState
from reconciler.system.clock import Clock
from reconciler.system.source import DesiredStateSource

log = logging.getLogger(__name__)

NODE_KEY = "node"
# Problems listed in the node's status. A revision with thousands of warnings would otherwise make every status
# document (and commit) megabytes; `reconciler validate` in CI lists them all.
SHOWN_PROBLEMS = 50
Key = tuple[str, str]  # (kind, name)


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
class _Outcome:
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
class _Slot:
    """One resource in force: the newest desired version of it and what its last pass found."""

    resource: Resource
    revision: str
    capability: AnyCapability | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    again: bool = False  # a pass was asked for while one ran
    outcome: _Outcome | None = None
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


class Reconciler:
    """Holds the desired state in force and reconciles it, one slot per resource."""

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
        self.source = source
        self.clock = clock
        self.capabilities = capabilities
        self.metrics = metrics
        self.saved = saved
        self.states = states or ResourceStates(capabilities)
        self.load_options = load_options or LoadOptions()
        self.observe_timeout = observe_timeout
        self.on_pass = on_pass  # told once per loop turn in which passes ended (the agent persists its state)
        self.lock = asyncio.Lock()  # one load at a time
        self.limit = asyncio.Semaphore(concurrency)
        self.file_cache = FileCache()
        self.fetched_revision: str | None = None
        self.attempted: str | None = None  # the newest revision loaded (or refused) by this process
        self.desired: DesiredState | None = None
        self.desired_revision: str | None = None
        self.problems: tuple[Problem, ...] = ()
        self.stall: tuple[str, str] | None = None
        self.plan = Plan("", settings.node)
        self.slots: dict[Key, _Slot] = {}
        self.removals: list[TargetPlan[Any]] = []  # resources the newest revision removed, and what went with them
        self.resources: dict[Key, ResourceStatus] = {}
        self.ready = False
        self.background = False  # passes started by revisions and clocks run as tasks (the running agent)
        self.stopped_at: float | None = None  # set by the agent's stop, for its final status
        self._tasks: set[asyncio.Task[None]] = set()
        self._relevant: tuple[tuple[Problem, ...], tuple[Problem, ...]] = ((), ())
        self._summary_pending = False
        self.status = self._node_status(record=False)

    # --- loading ---------------------------------------------------------------------------------------------

    async def _load(self, revision: str) -> None:
        """Make ``revision`` the desired state in force, or record why it cannot be."""
        self.attempted = revision
        self.saved.attempted_revision = revision
        self.problems, self.stall = (), None
        if self.settings.verify_signatures:
            refusal = await asyncio.to_thread(self.source.verify, revision)
            if refusal is not None:
                self.stall = ("UnsignedRevision", refusal)
                self.metrics.errors.labels("signature").inc()
                log.warning("revision refused revision=%s reason=%s", revision[:12], refusal)
                return
        try:
            tree = await asyncio.to_thread(
                self.source.tree_at, revision, max_file_bytes=self.load_options.max_file_bytes
            )
        except PathNotFoundError as exc:
            self.stall = ("PathNotFound", str(exc))
            self.metrics.errors.labels("source").inc()
            log.warning("revision refused revision=%s reason=%s", revision[:12], exc)
            return
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
        try:
            files = await asyncio.to_thread(self.source.files_at, revision)
        except ReconcilerError as exc:
            self.stall = ("SourceUnreadable", str(exc))
            self.metrics.errors.labels("source").inc()
            return
        desired = replace(result.state.for_node(self.settings.node), files_root=files)
        removal = self._removes_everything(desired, revision)
        if removal:
            self.stall = ("SafetyGate", removal)
            log.warning("revision held revision=%s reason=%s", revision[:12], removal)
            return
        self.desired = desired
        self.desired_revision = revision
        for capability in self.capabilities.values():
            capability.use(desired)
        log.info("revision loaded revision=%s resources=%d", revision[:12], len(self.desired))

    def _enforced(self, resources: Iterable[Resource]) -> list[str]:
        enforced = []
        for resource in resources:
            capability = self.capabilities.get(resource.KIND)
            if capability is not None and capability.enforces:
                enforced.append(f"{resource.KIND}/{resource.metadata.name}")
        return enforced

    def _removes_everything(self, desired: DesiredState, revision: str) -> str:
        """Why ``desired`` is held: it would remove every resource this node enforces (empty when it is not).
        A large removal of one target is the safety gate's to refuse; losing everything at once is refused the
        same way, unless forced or nothing was enforced before."""
        if self.settings.force or self.desired is None or self._enforced(desired):
            return ""
        before = self._enforced(self.desired)
        if not before:
            return ""
        shown = ", ".join(before[:5]) + (f" and {len(before) - 5} more" if len(before) > 5 else "")
        return (
            f"revision {revision[:12]} would remove every resource this node enforces ({len(before)}: {shown}): "
            "if that is intended, run once with --force"
        )

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
                self.status = self._node_status()
                return
            await self._update_slots(self.desired, self.desired_revision)

    async def _update_slots(self, desired: DesiredState, revision: str) -> None:
        wanted: dict[Key, Resource] = {(r.KIND, r.metadata.name): r for r in desired}
        for key, resource in wanted.items():
            slot = self.slots.get(key)
            if slot is None:
                self.slots[key] = _Slot(resource, revision, self.capabilities.get(resource.KIND))
            elif slot.revision != revision:
                slot.resource, slot.revision, slot.held = resource, revision, None
                slot.backoff.reset()
        self.removals = []
        for key in sorted(set(self.slots) - set(wanted)):
            slot = self.slots[key]
            if await self._forget(key, slot.capability):
                if slot.retry is not None:
                    slot.retry.cancel()
                del self.slots[key]
        # what earlier runs made for resources this process never held (a restart, run --once --force)
        held = {f"{kind}/{name}" for kind, name in [*wanted, *self.slots]}
        for label in sorted(self.saved.made - held):
            kind, _, name = label.partition("/")
            await self._forget((kind, name), self.capabilities.get(kind))

    async def _forget(self, key: Key, capability: AnyCapability | None) -> bool:
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
        self.resources.pop(key, None)
        self.saved.conditions.pop(label, None)
        self.metrics.forget_resource(kind, name)
        return True

    # --- one pass over one resource ------------------------------------------------------------------------

    async def _observe(self, slot: _Slot, capability: AnyCapability, resource: Any, state: Any, timeout: float) -> Any:
        async with self.limit:
            started = self.clock.monotonic()
            try:
                return await asyncio.wait_for(capability.observe(resource, state), timeout)
            finally:
                self.metrics.observe_seconds.labels(slot.resource.KIND).observe(self.clock.monotonic() - started)

    async def _pass(self, slot: _Slot) -> _Outcome:
        capability = slot.capability
        if capability is None:
            message = f"this agent does not enforce {slot.resource.KIND} yet; the resource is validated only"
            return _Outcome(cond.degraded("NotEnforced", message))
        resource = capability.narrow(slot.resource)
        state = self.states.of(*slot.key)
        timeout = capability.observe_timeout(resource) or self.observe_timeout
        try:
            observed = await self._observe(slot, capability, resource, state, timeout)
        except Exception as exc:  # a failing observer degrades only its own resource
            return self._failure(slot, "ObserveFailed", "observer", "observe failed", exc, timeout=timeout)
        outcome = _Outcome(cond.ready("Applied"), dict(observed.summary), dict(observed.details))
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
                failure = self._failure(
                    slot, "ApplyFailed", "applier", f"apply failed target={target.target}", exc, context=part
                )
                failure.targets = outcome.targets
                failure.observations, failure.details = outcome.observations, outcome.details
                return failure
            if slot.approved:
                slot.approved.discard(target.checksum)
            log.info("applied resource=%s target=%s changes=%d", slot.label, target.target, len(target.changes))
        if any(t.changes for t in outcome.targets):
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

    def _held(self, slot: _Slot, resource: Resource, targets: Sequence[TargetPlan[Any]]) -> str:
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

    def _failure(
        self,
        slot: _Slot,
        reason: str,
        component: str,
        doing: str,
        exc: BaseException,
        *,
        timeout: float = 0.0,
        context: str = "",
    ) -> _Outcome:
        self.metrics.errors.labels(component).inc()
        message = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError) and timeout:
            message = f"timed out after {timeout:g}s"
        if context:
            message = f"{message}; {context}"
        if is_retryable(exc):
            log.warning("%s resource=%s error=%s", doing, slot.label, message)
            return _Outcome(cond.degraded(reason, message), result=PassResult.RETRY)
        log.warning("%s resource=%s error=%s (not retried before the next revision)", doing, slot.label, message)
        return _Outcome(cond.stalled(reason, message), result=PassResult.HELD)

    def _record(self, slot: _Slot, outcome: _Outcome, revision: str) -> None:
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
        if outcome.result is PassResult.HELD:
            slot.held = revision
        if outcome.result is PassResult.RETRY:
            self._schedule_retry(slot)
        elif not outcome.failed:
            slot.backoff.reset()

    def _schedule_retry(self, slot: _Slot) -> None:
        delay = slot.backoff.next()
        log.info("resource retry resource=%s retry_in=%.1fs", slot.label, delay)
        if not self.background:
            return  # one pass (--once, plan): the caller decides
        if slot.retry is not None:
            slot.retry.cancel()
        slot.retry = asyncio.get_running_loop().call_later(delay, self._start, slot.key)

    async def _run(self, slot: _Slot) -> None:
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
                    outcome = await self._pass(slot)
                except Exception as exc:  # a bug in a capability's plan: still only this resource
                    outcome = self._failure(slot, "InternalError", "internal", "pass failed", exc)
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
        self.stopped_at = self.clock.now()
        self.status = self._node_status(self._failed())

    async def close(self) -> None:
        """Cancel passes in flight (shutdown)."""
        for slot in self.slots.values():
            if slot.retry is not None:
                slot.retry.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- the node's view -------------------------------------------------------------------------------------

    def _failed(self) -> tuple[str, ...]:
        return tuple(s.label for _, s in sorted(self.slots.items()) if s.outcome is not None and s.outcome.failed)

    def _ended(self, result: PassResult) -> tuple[str, ...]:
        """The resources whose last pass ended so."""
        return tuple(
            s.label for _, s in sorted(self.slots.items()) if s.outcome is not None and s.outcome.result is result
        )

    def _held_by_gate(self) -> tuple[str, ...]:
        return self._ended(PassResult.GATED)

    def approve(self, checksum: str) -> list[str]:
        """Let the held plan(s) with ``checksum`` through the gate once: the node's whole plan (``GET /plan``) or
        one target's. The resources that will be reconciled now; empty when no held plan has that checksum."""
        whole = checksum == self.plan.checksum
        approved = []
        for key, slot in sorted(self.slots.items()):
            if not (slot.outcome is not None and slot.outcome.result is PassResult.GATED):
                continue
            for target in slot.outcome.targets:
                if whole or target.checksum == checksum:
                    slot.approved.add(target.checksum)
                    approved.append(slot.label)
            if slot.label in approved:
                self._start(key)
        return sorted(set(approved))

    def _degraded(self) -> tuple[str, ...]:
        return self._ended(PassResult.DEGRADED)

    def _summarise(self, *, notify: bool = True) -> None:
        """After passes: the plan, the applied revision and the node's status; ``notify`` tells ``on_pass`` (the
        agent persists), which ``tick()``'s caller does itself once the whole tick is over."""
        self._summary_pending = False
        targets = [t for s in self.slots.values() if s.outcome is not None for t in s.outcome.targets]
        self.plan = Plan(self.desired_revision or "", self.settings.node, (*self.removals, *targets))
        failed = self._failed()
        complete = all(s.outcome_revision == self.desired_revision for s in self.slots.values())
        if self.desired_revision is not None and complete and not failed:
            self.saved.applied_revision = self.desired_revision
            self.ready = True
            self.metrics.set_revision(self.desired_revision, self.settings.branch)
        self.status = self._node_status(failed)
        if notify and self.on_pass is not None:
            self.on_pass()

    def _result(self, before: str | None) -> TickResult:
        if self.desired is None or self.desired_revision is None:
            return TickResult(TickOutcome.STALLED if self.stall else TickOutcome.WAITING, self.plan)
        self._summarise(notify=False)
        failed = self._failed()
        if self.stall:
            verdict = TickOutcome.STALLED
        elif failed:
            verdict = TickOutcome.DEGRADED
        elif self.plan.empty and before == self.desired_revision:
            verdict = TickOutcome.UNCHANGED
        else:
            verdict = TickOutcome.APPLIED
        return TickResult(verdict, self.plan, failed)

    def _relevant_problems(self) -> tuple[Problem, ...]:
        """Errors when there are any, else warnings (computed once per loaded revision, not per pass)."""
        if self._relevant[0] is not self.problems:
            errors = tuple(p for p in self.problems if p.severity is Severity.ERROR)
            self._relevant = (self.problems, errors or self.problems)
        return self._relevant[1]

    def _node_status(self, failed: Iterable[str] = (), *, record: bool = True) -> NodeStatus:
        """The node's status now. ``record`` merges its conditions into the saved history (not at start-up,
        where "Starting" would otherwise count as a transition and rewrite every transition time)."""
        failed = tuple(failed)
        applied = self.saved.applied_revision
        if self.stopped_at is not None:
            left = f"revision {applied[:12]} stays applied" if applied else "no revision was applied"
            current = cond.stopped(f"the agent stopped at {cond.timestamp(self.stopped_at)}; {left}, unwatched")
        elif self.stall is not None:
            reason, message = self.stall
            if applied:
                message += f"; revision {applied[:12]} stays in force"
            current = cond.stalled(reason, message)
        elif failed and set(held := self._held_by_gate()) == set(failed):
            current = cond.stalled("SafetyGate", f"{len(held)} resource(s) held by the safety gate: {', '.join(held)}")
        elif failed:
            message = f"{len(failed)} resource(s) failing: {', '.join(failed)}"
            if self.desired_revision is not None and self.desired_revision != applied:
                whole = sum(1 for s in self.slots.values() if s.applied == self.desired_revision)
                message += (
                    f"; revision {self.desired_revision[:12]} is in force for {whole} of {len(self.slots)} "
                    f"resource(s), in part for the failing ones"
                    + (f"; {applied[:12]} is the last revision applied whole" if applied else "")
                )
            current = cond.degraded("ResourcesFailing", message)
        elif degraded := self._degraded():
            current = cond.degraded("ResourcesDegraded", f"{len(degraded)} resource(s) degraded: {', '.join(degraded)}")
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
        relevant = self._relevant_problems()
        return NodeStatus(
            node=self.settings.node,
            branch=self.settings.branch,
            applied_revision=applied,
            attempted_revision=self.saved.attempted_revision,
            dry_run=self.settings.dry_run,
            conditions=merged,
            problems=relevant[:SHOWN_PROBLEMS],
            resources=tuple(r for _, r in sorted(self.resources.items())),
            problems_not_shown=max(0, len(relevant) - SHOWN_PROBLEMS),
        )
