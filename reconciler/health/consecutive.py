"""The IP-pool rule, fixed: a member is banned at the ``failures``-th failure in a row when those failures fall
within ``within``; after ``cooldown`` it returns with its count reset. A success ends a run of failures.

Observations that arrive while a member is banned (requests already in flight) neither extend nor end the ban.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    run = (*state.failures, observation.at)[-settings.failures :]
    window = settings.within.total_seconds()
    if len(run) == settings.failures and run[-1] - run[0] <= window:
        until = now + settings.cooldown.total_seconds()
        reason = f"{settings.failures} failures in a row within {window:g}s; banned for {settings.cooldown}"
        return ConsecutiveState(Verdict(False, reason), (), until)
    return ConsecutiveState(AVAILABLE, run, None)
