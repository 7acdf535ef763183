"""The IP-pool rule, fixed: a member is banned at the ``failures``-th failure in a row (``mode: exceed``: at the
one after, as ipmanager counted) when those failures fall within ``within``; after ``cooldown`` it returns with
its count reset. A success ends a run of failures. While banned, the run that banned it is kept (and shown).

Observations that arrive while a member is banned (requests already in flight) neither extend nor end the ban.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.health.base import AVAILABLE, Observation, Verdict
from reconciler.model.health_strategy import ConsecutiveSettings


@dataclass(frozen=True, slots=True)
class ConsecutiveState:
    verdict: Verdict = AVAILABLE
    failures: tuple[float, ...] = ()  # times of the current run of failures, the last ``failures`` of them
    banned_until: float | None = None


def release_due(state: ConsecutiveState, *, now: float) -> ConsecutiveState:
    """Lift a ban whose cool-down is over (also without a new observation)."""
    if state.banned_until is not None and now >= state.banned_until:
        return ConsecutiveState()
    return state


def step(
    state: ConsecutiveState, observation: Observation | None, *, settings: ConsecutiveSettings, now: float
) -> ConsecutiveState:
    state = release_due(state, now=now)
    if observation is None or state.banned_until is not None:
        return state
    if observation.ok:
        return ConsecutiveState() if state.failures else state
    banning = settings.banning
    run = (*state.failures, observation.at)[-banning:]
    window = settings.within.total_seconds()
    if len(run) == banning and run[-1] - run[0] <= window:
        until = now + settings.cooldown.total_seconds()
        reason = f"{banning} failures in a row within {window:g}s; banned for {settings.cooldown}"
        # the run that banned stays in the state while banned: the count shown is the one that banned it
        return ConsecutiveState(Verdict(False, reason), run, until)
    return ConsecutiveState(AVAILABLE, run, None)


class _Consecutive:
    type = "consecutive"
    state_type = ConsecutiveState

    def initial(self) -> ConsecutiveState:
        return ConsecutiveState()

    def step(
        self, state: Any, observation: Observation | None, *, settings: Any, now: float, others: Sequence[Any]
    ) -> ConsecutiveState:
        return step(state, observation, settings=settings, now=now)

    def cooldown_until(self, state: Any) -> float | None:
        return state.banned_until  # type: ignore[no-any-return]

    def in_a_row(self, state: Any) -> int:
        return len(state.failures)

    def to_json(self, state: Any) -> dict[str, Any]:
        return {"failures": list(state.failures), "bannedUntil": state.banned_until}

    def from_json(self, data: Mapping[str, Any], verdict: Verdict) -> ConsecutiveState:
        until = data.get("bannedUntil")
        return ConsecutiveState(
            verdict, tuple(float(t) for t in data["failures"]), None if until is None else float(until)
        )


STRATEGY = _Consecutive()
