"""Health strategies as pure state machines: examples of each rule, and hypothesis for their invariants."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.health import consecutive, latency, outlier, rise_fall
from reconciler.health.base import Observation
from reconciler.health.consecutive import ConsecutiveState
from reconciler.health.latency import LatencyState
from reconciler.health.outlier import OutlierState
from reconciler.health.rise_fall import RiseFall, RiseFallState
from reconciler.model.health_strategy import ConsecutiveSettings, LatencySettings, OutlierSettings

CONSECUTIVE = ConsecutiveSettings(failures=3, within=timedelta(seconds=60), cooldown=timedelta(seconds=600))


def _consecutive(outcomes: list[tuple[float, bool]], rule: ConsecutiveSettings = CONSECUTIVE) -> list[ConsecutiveState]:
    state, states = ConsecutiveState(), []
    for at, ok in outcomes:
        state = consecutive.step(state, Observation(ok, at), settings=rule, now=at)
        states.append(state)
    return states


# --- consecutive ------------------------------------------------------------------------------------------------


def test_consecutive_bans_exactly_at_the_nth_failure_within_the_window() -> None:
    states = _consecutive([(0, False), (10, False), (20, False)])
    assert [s.verdict.available for s in states] == [True, True, False]
    assert "3 failures in a row" in states[-1].verdict.reason


def test_consecutive_never_bans_failures_spread_wider_than_the_window() -> None:
    states = _consecutive([(0, False), (40, False), (70, False)])  # 70 s from first to third: wider than 60 s
    assert all(s.verdict.available for s in states)
    # but the last three of a longer run count: 40, 70, 90 fall within 60 s
    assert not _consecutive([(0, False), (40, False), (70, False), (90, False)])[-1].verdict.available


def test_a_success_ends_a_run_of_failures() -> None:
    states = _consecutive([(0, False), (1, False), (2, True), (3, False), (4, False)])
    assert all(s.verdict.available for s in states)


def test_release_after_cooldown_with_the_count_reset() -> None:
    banned = _consecutive([(0, False), (1, False), (2, False)])[-1]
    during = consecutive.step(banned, Observation(False, 100), settings=CONSECUTIVE, now=100)
    assert during == banned  # in-flight failures neither extend nor end a ban
    released = consecutive.step(banned, None, settings=CONSECUTIVE, now=602)
    assert released.verdict.available
    assert released.failures == ()
    # a fresh count: two failures after release do not ban again
    again = consecutive.step(released, Observation(False, 603), settings=CONSECUTIVE, now=603)
    again = consecutive.step(again, Observation(False, 604), settings=CONSECUTIVE, now=604)
    assert again.verdict.available


@settings(max_examples=300)
@given(
    failures=st.integers(1, 6),
    window=st.integers(1, 100),
    outcomes=st.lists(st.tuples(st.integers(0, 50), st.booleans()), max_size=40),
)
def test_consecutive_matches_its_rule_in_words(failures: int, window: int, outcomes: list[tuple[int, bool]]) -> None:
    """Against an oracle written from the rule: banned at the N-th failure in a row when the last N failures fit
    the window; a success ends the run; nothing else bans (the hour-long cool-down outlasts every sequence)."""
    rule = ConsecutiveSettings(failures=failures, within=timedelta(seconds=window), cooldown=timedelta(hours=1))
    at, state = 0.0, ConsecutiveState()
    run: list[float] = []
    banned = False
    for gap, ok in outcomes:
        at += gap
        state = consecutive.step(state, Observation(ok, at), settings=rule, now=at)
        if not banned:
            if ok:
                run = []
            else:
                run.append(at)
                banned = len(run) >= failures and run[-1] - run[-failures] <= window
        assert state.verdict.available == (not banned)


# --- latency ----------------------------------------------------------------------------------------------------

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

OUTLIER = OutlierSettings(
    failures=2, baseEjection=timedelta(seconds=30), maxEjection=timedelta(seconds=100), maxEjectedPercent=50
)


def _fail(state: OutlierState, at: float, others: list[OutlierState] | None = None) -> OutlierState:
    return outlier.step(state, Observation(False, at), settings=OUTLIER, now=at, others=others or [OutlierState()] * 3)


def test_outlier_ejection_grows_and_is_capped() -> None:
    state = _fail(_fail(OutlierState(), 0), 1)
    assert state.ejected
    assert state.ejected_until == 31
    state = outlier.release_due(state, settings=OUTLIER, now=31)
    assert not state.ejected
    state = _fail(_fail(state, 32), 33)
    assert state.ejected_until == 33 + 60  # the second ejection lasts twice as long
    lasted = []
    for _ in range(3):
        state = outlier.release_due(state, settings=OUTLIER, now=state.ejected_until or 0)
        at = (state.released_at or 0) + 1
        state = _fail(_fail(state, at), at + 1)
        lasted.append((state.ejected_until or 0) - (at + 1))
    assert lasted == [90, 100, 100]  # 3 x 30 s, then capped at maxEjection


def test_outlier_count_decays_after_staying_in() -> None:
    state = outlier.release_due(_fail(_fail(OutlierState(), 0), 1), settings=OUTLIER, now=31)
    state = outlier.step(state, None, settings=OUTLIER, now=31 + 100)
    assert state.ejections == 0


def test_outlier_never_ejects_the_last_member_or_past_the_percent() -> None:
    ejected = OutlierState(ejected_until=1e9)
    # one of two already out: 50 % is the cap, and the other is the last one standing
    kept = _fail(_fail(OutlierState(), 0, [ejected]), 1, [ejected])
    assert not kept.ejected
    assert kept.failures == 2


@given(
    size=st.integers(1, 12),
    percent=st.integers(0, 100),
    events=st.lists(st.tuples(st.integers(0, 11), st.booleans(), st.integers(0, 40)), max_size=80),
)
def test_outlier_caps_hold_whatever_happens(size: int, percent: int, events: list[tuple[int, bool, int]]) -> None:
    """Never more than maxEjectedPercent of the set ejected, and never all of it."""
    rule = OutlierSettings(
        failures=1, baseEjection=timedelta(seconds=10), maxEjection=timedelta(seconds=60), maxEjectedPercent=percent
    )
    states = [OutlierState() for _ in range(size)]
    now = 0.0
    for member, ok, gap in events:
        now += gap
        index = member % size
        others = [s for i, s in enumerate(states) if i != index]
        states = [outlier.release_due(s, settings=rule, now=now) for s in states]
        states[index] = outlier.step(states[index], Observation(ok, now), settings=rule, now=now, others=others)
        out = sum(1 for s in states if s.ejected)
        assert out * 100 <= percent * size
        assert out < size


# --- rise / fall ------------------------------------------------------------------------------------------------


def test_rise_and_fall_count_in_a_row() -> None:
    rule = RiseFall(rise=2, fall=3)
    state = RiseFallState()
    for ok in (False, False):
        state = rise_fall.step(state, ok, rule=rule, error="refused")
    assert state.up  # two failures: not yet
    state = rise_fall.step(state, False, rule=rule, error="refused")
    assert (state.up, state.verdict.reason) == (False, "refused")
    state = rise_fall.step(state, True, rule=rule)
    assert not state.up
    assert rise_fall.step(state, True, rule=rule).up
    assert not rise_fall.down("down before the restart").up


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 5), st.integers(1, 5))
def test_rise_fall_changes_only_after_enough_in_a_row(outcomes: list[bool], rise: int, fall: int) -> None:
    rule = RiseFall(rise=rise, fall=fall)
    state = RiseFallState()
    for index, ok in enumerate(outcomes):
        before = state
        state = rise_fall.step(state, ok, rule=rule)
        tail = outcomes[: index + 1]
        streak = next((i for i, o in enumerate(reversed(tail)) if o != ok), len(tail))
        if before.up and not state.up:
            assert not ok
            assert streak >= fall
        if not before.up and state.up:
            assert ok
            assert streak >= rise
