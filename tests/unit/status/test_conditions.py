"""Conditions keep their transition time until their status changes."""

from __future__ import annotations

from reconciler.status import conditions as cond


def test_transition_time_changes_only_with_status() -> None:
    """Same status, new reason: the time is kept; a new status: the time moves."""
    first = cond.carry_over((), cond.ready("Applied"), now=0)
    same = cond.carry_over(first, cond.ready("DryRun", "other"), now=100)
    assert [c.last_transition_time for c in same] == [c.last_transition_time for c in first]
    flipped = cond.carry_over(first, cond.stalled("InvalidDesiredState", "x"), now=100)
    stalled = next(c for c in flipped if c.type == "Stalled")
    assert stalled.last_transition_time == "1970-01-01T00:01:40Z"
