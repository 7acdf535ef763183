"""IP-pool health, pure: failures by status and class, bans at the N-th failure within the window (not N+1),
cool-downs from the failure's own time, a reset count after release, manual bans and their release, bounded
history, and the state surviving a round trip through JSON."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.model import HealthStrategy
from reconciler.model.ip_pool import FailureRule
from reconciler.planning.pool import MemberHealth, failure_test, health_from_json, health_to_json, judge


def _strategy(kind: str = "consecutive", **settings: Any) -> HealthStrategy:
    return HealthStrategy.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "HealthStrategy",
            "metadata": {"name": "s"},
            "spec": {"type": kind, kind: settings},
        }
    )


CONSECUTIVE = _strategy(failures=3, within="1m", cooldown="10m")
FAILING = failure_test(FailureRule(statuses=("5xx", "403")))


def _judge(
    requests: dict[str, list[tuple[int, float]]],
    known: dict[str, MemberHealth] | None = None,
    *,
    now: float,
    banned: tuple[str, ...] = (),
    history: int = 100,
) -> dict[str, MemberHealth]:
    return judge(
        CONSECUTIVE,
        ["a", "b"],
        known or {},
        requests,
        failing=FAILING,
        banned=banned,
        history=history,
        now=now,
    )


def test_failure_statuses_and_classes() -> None:
    assert 502 in FAILING
    assert 599 in FAILING
    assert 403 in FAILING
    assert 404 not in FAILING
    assert 200 not in FAILING


def test_banned_at_the_nth_failure_in_the_window_and_back_after_the_cooldown_with_a_fresh_count() -> None:
    two = _judge({"a": [(502, 100.0), (502, 101.0)]}, now=102.0)
    assert two["a"].verdict.available
    three = _judge({"a": [(503, 102.0)]}, two, now=103.0)
    assert not three["a"].verdict.available
    assert "3 failures in a row" in three["a"].verdict.reason
    assert three["b"].verdict.available
    still = _judge({}, three, now=102.0 + 599)
    assert not still["a"].verdict.available
    back = _judge({}, still, now=102.0 + 600)
    assert back["a"].verdict.available
    one_more = _judge({"a": [(502, 800.0)]}, back, now=801.0)
    assert one_more["a"].verdict.available  # the count was reset: one failure is not three


def test_failures_spread_wider_than_the_window_do_not_ban_and_a_success_ends_a_run() -> None:
    slow = _judge({"a": [(502, 0.0), (502, 40.0), (502, 80.0)]}, now=81.0)
    assert slow["a"].verdict.available
    broken = _judge({"a": [(502, 0.0), (502, 1.0), (200, 2.0), (502, 3.0)]}, now=4.0)
    assert broken["a"].verdict.available


def test_a_backlog_read_late_cools_down_from_the_failure_time() -> None:
    late = _judge({"a": [(502, 0.0), (502, 1.0), (502, 2.0)]}, now=700.0)
    assert late["a"].verdict.available  # banned at 2 s for 10 min: over by 700 s


def test_manual_ban_holds_and_its_release_resets_the_count() -> None:
    held = _judge({"a": [(200, 1.0)], "b": [(502, 1.0), (502, 2.0)]}, now=3.0, banned=("a", "b"))
    assert held["a"].verdict.reason == "Banned: listed in spec.banned"
    assert not held["b"].verdict.available
    released = _judge({"b": [(502, 4.0)]}, held, now=5.0)
    assert released["a"].verdict.available
    assert released["b"].verdict.available  # two old failures and one new: not three in a row


def test_history_is_bounded_counts_are_kept_and_members_that_left_are_forgotten() -> None:
    first = _judge({"a": [(200, float(t)) for t in range(8)]}, now=10.0, history=5)
    assert [at for _, at in first["a"].history] == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert first["a"].requests == {"2xx": 8}
    after = judge(CONSECUTIVE, ["b"], first, {}, failing=FAILING, banned=(), history=5, now=11.0)
    assert list(after) == ["b"]


@given(st.lists(st.tuples(st.sampled_from([200, 404, 502, 503]), st.floats(0, 1000)), max_size=40))
def test_state_survives_json_for_every_strategy(requests: list[tuple[int, float]]) -> None:
    ordered = sorted(requests, key=lambda r: r[1])
    for strategy in (CONSECUTIVE, _strategy("outlier", failures=2), _strategy("latency")):
        judged = judge(strategy, ["a"], {}, {"a": ordered}, failing=FAILING, banned=(), history=10, now=1000.0)
        assert health_from_json(health_to_json(judged["a"])) == judged["a"]
