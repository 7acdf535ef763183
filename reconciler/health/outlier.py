"""Envoy's outlier ejection: ``failures`` in a row eject a member for ``baseEjection`` x the number of times it was
ejected, at most ``maxEjection``. A set never has more than ``maxEjectedPercent`` of its members ejected, and its
last member that is not ejected is never ejected: a member that sometimes works beats none (fail open, visibly).

The ejection count decays: a member that stays in for ``maxEjection`` after a release starts again from one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reconciler.health.base import AVAILABLE, Observation, Verdict
from reconciler.model.health_strategy import OutlierSettings


@dataclass(frozen=True, slots=True)
class OutlierState:
    verdict: Verdict = AVAILABLE
    failures: int = 0  # in a row
    ejections: int = 0  # how often ejected since the count last decayed
    ejected_until: float | None = None
    released_at: float | None = None

    @property
    def ejected(self) -> bool:
        return self.ejected_until is not None


def may_eject(others: Iterable[OutlierState], settings: OutlierSettings) -> bool:
    """Whether one more member of a set may go, given the other members' states."""
    states = list(others)
    size = len(states) + 1
    ejected = sum(1 for s in states if s.ejected)
    if ejected + 1 >= size:
        return False  # never the last one standing
    return (ejected + 1) * 100 <= settings.maxEjectedPercent * size


def release_due(state: OutlierState, *, settings: OutlierSettings, now: float) -> OutlierState:
    if state.ejected_until is not None and now >= state.ejected_until:
        return OutlierState(AVAILABLE, 0, state.ejections, None, now)
    if state.released_at is not None and now - state.released_at >= settings.maxEjection.total_seconds():
        return replace(state, ejections=0, released_at=None)
    return state


def ejection_seconds(ejections: int, settings: OutlierSettings) -> float:
    """How long the ``ejections``-th ejection lasts."""
    return float(min(settings.baseEjection.total_seconds() * ejections, settings.maxEjection.total_seconds()))


def step(
    state: OutlierState,
    observation: Observation | None,
    *,
    settings: OutlierSettings,
    now: float,
    others: Iterable[OutlierState] = (),
) -> OutlierState:
    """``others``: the states of the rest of the set (for the caps); only read when this step would eject."""
    state = release_due(state, settings=settings, now=now)
    if observation is None or state.ejected:
        return state
    if observation.ok:
        return replace(state, failures=0) if state.failures else state
    failures = state.failures + 1
    if failures < settings.failures or not may_eject(others, settings):
        return replace(state, failures=failures)
    ejections = state.ejections + 1
    seconds = ejection_seconds(ejections, settings)
    reason = f"{failures} failures in a row; ejected for {seconds:g}s (ejection {ejections})"
    return OutlierState(Verdict(False, reason), failures, ejections, now + seconds, None)


class _Outlier:
    type = "outlier"
    state_type = OutlierState

    def initial(self) -> OutlierState:
        return OutlierState()

    def step(
        self, state: Any, observation: Observation | None, *, settings: Any, now: float, others: Sequence[Any]
    ) -> OutlierState:
        return step(state, observation, settings=settings, now=now, others=others)

    def cooldown_until(self, state: Any) -> float | None:
        return state.ejected_until  # type: ignore[no-any-return]

    def in_a_row(self, state: Any) -> int:
        return state.failures  # type: ignore[no-any-return]

    def to_json(self, state: Any) -> dict[str, Any]:
        return {
            "failures": state.failures,
            "ejections": state.ejections,
            "ejectedUntil": state.ejected_until,
            "releasedAt": state.released_at,
        }

    def from_json(self, data: Mapping[str, Any], verdict: Verdict) -> OutlierState:
        until, last = data.get("ejectedUntil"), data.get("releasedAt")
        return OutlierState(
            verdict,
            int(data["failures"]),
            int(data["ejections"]),
            None if until is None else float(until),
            None if last is None else float(last),
        )


STRATEGY = _Outlier()
