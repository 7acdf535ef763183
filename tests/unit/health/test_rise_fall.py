"""Rise/fall counting in a row: examples and hypothesis."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.health import rise_fall
from reconciler.health.rise_fall import RiseFall, RiseFallState


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
