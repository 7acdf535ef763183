"""Outlier ejection: growth, cap, decay, and its limits under hypothesis."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from reconciler.health import outlier
from reconciler.health.base import Observation
from reconciler.health.outlier import OutlierState
from reconciler.model.health_strategy import OutlierSettings

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
