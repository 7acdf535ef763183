"""The latency strategy: the mean over the window classifies, examples and hypothesis."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from reconciler.health import latency
from reconciler.health.base import Observation
from reconciler.health.latency import LatencyState
from reconciler.model.health_strategy import LatencySettings

LATENCY = LatencySettings(goodEnough=timedelta(milliseconds=700), window=timedelta(seconds=600))


def test_latency_classifies_by_the_mean_over_the_window() -> None:
    state = LatencyState()
    for at, seconds in [(0, 0.2), (10, 0.4), (20, 1.8)]:
        state = latency.step(state, Observation(True, at, seconds), settings=LATENCY, now=at)
    assert not state.verdict.available  # mean 0.8 s
    assert "> 700ms" in state.verdict.reason
    state = latency.step(state, Observation(True, 30, 0.1), settings=LATENCY, now=30)
    assert state.verdict.available  # mean 0.625 s
    # the slow observations leave the window: only the fast one is left
    late = latency.step(state, None, settings=LATENCY, now=625)
    assert [s for _, s in late.samples] == [0.1]
    assert late.verdict.available


def test_a_failed_observation_counts_at_its_recorded_time_or_as_infinitely_slow() -> None:
    timed = latency.step(LatencyState(), Observation(False, 0, 10.0), settings=LATENCY, now=0)
    assert timed.samples == ((0, 10.0),)
    unknown = latency.step(LatencyState(), Observation(False, 0), settings=LATENCY, now=0)
    assert math.isinf(unknown.samples[0][1])
    assert not unknown.verdict.available


@given(st.lists(st.tuples(st.integers(0, 30), st.floats(0, 5)), min_size=1, max_size=30))
def test_latency_verdict_is_the_mean_of_the_window(samples: list[tuple[int, float]]) -> None:
    state, at = LatencyState(), 0.0
    for gap, seconds in samples:
        at += gap
        state = latency.step(state, Observation(True, at, seconds), settings=LATENCY, now=at)
    kept = [s for when, s in state.samples]
    assert all(when > at - 600 for when, _ in state.samples)
    assert state.verdict.available == (sum(kept) / len(kept) <= 0.7)


# --- outlier ----------------------------------------------------------------------------------------------------
