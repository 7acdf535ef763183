"""HAProxy's active-check rule: ``rise`` passed checks in a row bring a member up, ``fall`` failed ones take it
down. A member starts up (traffic flows at start, as HAProxy does) unless it is known to have been down."""

from __future__ import annotations

from dataclasses import dataclass, replace

from reconciler.health.base import AVAILABLE, Verdict


@dataclass(frozen=True, slots=True)
class RiseFall:
    rise: int = 2
    fall: int = 3


@dataclass(frozen=True, slots=True)
class RiseFallState:
    verdict: Verdict = AVAILABLE
    successes: int = 0  # in a row
    failures: int = 0  # in a row
    last_error: str = ""

    @property
    def up(self) -> bool:
        return self.verdict.available


def down(reason: str) -> RiseFallState:
    """A member that starts down and needs ``rise`` passed checks."""
    return RiseFallState(Verdict(False, reason))


def step(state: RiseFallState, ok: bool, *, rule: RiseFall, error: str = "") -> RiseFallState:
    if ok:
        successes = state.successes + 1
        verdict = AVAILABLE if state.up or successes >= rule.rise else state.verdict
        return RiseFallState(verdict, successes, 0, state.last_error)
    failures = state.failures + 1
    if state.up and failures < rule.fall:
        return replace(state, successes=0, failures=failures, last_error=error)
    return RiseFallState(Verdict(False, error or "check failed"), 0, failures, error)
