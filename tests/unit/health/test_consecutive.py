"""The consecutive-failures strategy as a pure state machine: examples of its rule, and hypothesis for it."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.health import consecutive
from reconciler.health.base import Observation
from reconciler.health.consecutive import ConsecutiveState
from reconciler.model.health_strategy import ConsecutiveSettings

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


def test_exceed_mode_bans_at_the_failure_after_n_as_ipmanager_did() -> None:
    """ipmanager banned when the count exceeded consecutive_failure (Failure > N): with 3, at the 4th failure."""
    exceed = CONSECUTIVE.model_copy(update={"mode": "exceed"})
    states = _consecutive([(0, False), (10, False), (20, False), (30, False)], exceed)
    assert [s.verdict.available for s in states] == [True, True, True, False]
    assert "4 failures in a row" in states[-1].verdict.reason
    assert (CONSECUTIVE.banning, exceed.banning) == (3, 4)
    assert len(states[-1].failures) == 4  # while banned, the count that banned it (ipmanager's Failure)


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
    exceed=st.booleans(),
)
def test_consecutive_matches_its_rule_in_words(
    failures: int, window: int, outcomes: list[tuple[int, bool]], exceed: bool
) -> None:
    """Against an oracle written from the rule: banned at the N-th failure in a row (``exceed``: the N+1-th) when
    those last failures fit the window; a success ends the run; nothing else bans (the hour-long cool-down
    outlasts every sequence)."""
    mode = "exceed" if exceed else "reach"
    rule = ConsecutiveSettings(
        failures=failures, within=timedelta(seconds=window), cooldown=timedelta(hours=1), mode=mode
    )
    failures += exceed
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
