"""The edge-manager rule: a member is available while its mean latency over ``window`` is at most ``goodEnough``.

A failed observation counts at its recorded time (the timeout value, as the edge manager records it) or, without
one, as infinitely slow. With no observation in the window there is nothing against the member: available.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.health.base import Observation, Verdict
from reconciler.model.health_strategy import LatencySettings

NOTHING_YET = Verdict(True, "no observations yet")


@dataclass(frozen=True, slots=True)
class LatencyState:
    verdict: Verdict = NOTHING_YET
    samples: tuple[tuple[float, float], ...] = ()  # (at, seconds), oldest first, all within the window


def step(
    state: LatencyState, observation: Observation | None, *, settings: LatencySettings, now: float
) -> LatencyState:
    window = settings.window.total_seconds()
    samples = state.samples
    if observation is not None:
        seconds = observation.seconds if observation.seconds is not None else math.inf
        samples = (*samples, (observation.at, seconds))
    samples = tuple(s for s in samples if s[0] > now - window)
    if not samples:
        return LatencyState(Verdict(True, "no observations in the window"), ())
    average = sum(s for _, s in samples) / len(samples)
    limit = settings.goodEnough.total_seconds()
    shown = f"mean {average * 1000:.0f}ms over {len(samples)} observation(s) in {window:g}s"
    if average <= limit:
        return LatencyState(Verdict(True, f"{shown} <= {limit * 1000:.0f}ms"), samples)
    return LatencyState(Verdict(False, f"{shown} > {limit * 1000:.0f}ms"), samples)


class _Latency:
    type = "latency"
    state_type = LatencyState

    def initial(self) -> LatencyState:
        return LatencyState()

    def step(
        self, state: Any, observation: Observation | None, *, settings: Any, now: float, others: Sequence[Any]
    ) -> LatencyState:
        return step(state, observation, settings=settings, now=now)

    def cooldown_until(self, state: Any) -> float | None:
        return None  # a slow member is out while it is slow, not for a time

    def in_a_row(self, state: Any) -> int:
        return 0

    def to_json(self, state: Any) -> dict[str, Any]:
        return {"samples": [list(sample) for sample in state.samples]}

    def from_json(self, data: Mapping[str, Any], verdict: Verdict) -> LatencyState:
        return LatencyState(verdict, tuple((float(a), float(s)) for a, s in data["samples"]))


STRATEGY = _Latency()
