"""Edge tiers and the live set, pure: the tiers in order, the fastest four of ten, sticky live edges, the rotation
limit actually enforced (deferred changes reported), modes, never an empty set, and canaries per zone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.model.edge_network import EdgeMode
from reconciler.planning.edges import (
    Candidate,
    History,
    Judging,
    Probe,
    Tier,
    place_canaries,
    select_live,
    tier,
)

JUDGING = Judging(good_enough=0.7, window=300.0, live_count=4, max_changes=2, per=600.0)
TIMEOUT = 5.0
NOW = 10_000.0


def _history(*seconds: float, start: float = NOW - 100) -> History:
    history = History()
    for index, value in enumerate(seconds):
        history = history.add(Probe(start + index, min(value, TIMEOUT), ok=value < TIMEOUT), limit=100)
    return history


def _candidates(times: dict[str, float], modes: dict[str, EdgeMode] | None = None) -> list[Candidate]:
    found = []
    for host, seconds in times.items():
        history = _history(seconds)
        found.append(
            Candidate(
                host,
                (modes or {}).get(host, "available"),
                tier(history, JUDGING, now=NOW),
                history.average,
                history.answered,
            )
        )
    return found


def test_tiers_in_their_order() -> None:
    assert tier(_history(0.1), JUDGING, now=NOW) == Tier.PASS_THRESHOLD
    assert tier(_history(0.1, 6.0), JUDGING, now=NOW) == Tier.FAIL
    assert tier(_history(0.1, 0.1, 0.1, 0.9), JUDGING, now=NOW) == Tier.PASS_WINDOW
    old = History((Probe(NOW - 5000, 0.1), Probe(NOW - 4000, 0.1), Probe(NOW - 3000, 0.1), Probe(NOW - 1, 0.9)))
    assert tier(old, JUDGING, now=NOW) == Tier.PASS_AVERAGE  # the window holds only the slow probe
    assert tier(_history(0.9, 0.9), JUDGING, now=NOW) == Tier.PASS


def test_the_four_fastest_of_ten_and_a_sticky_live_edge() -> None:
    delays = [0.1, 0.2, 1, 2, 3, 4, 5, 6, 7, 8]
    times = {f"edge{index}": float(d) for index, d in enumerate(delays)}
    first = select_live(_candidates(times), (), (), JUDGING, now=NOW)
    assert first.live == ("edge0", "edge1", "edge2", "edge3")
    assert first.changes == ()  # the first publication is free
    # edge2 and edge3 get fast; edge1 stays under goodEnough: it stays live although edge2/3 are now faster
    faster = dict(times, edge2=0.05, edge3=0.06)
    again = select_live(_candidates(faster), first.live, first.changes, JUDGING, now=NOW)
    assert set(again.live) == {"edge0", "edge1", "edge2", "edge3"}
    assert again.entered == ()


def test_the_rotation_limit_defers_changes_beyond_the_budget() -> None:
    times = {f"edge{index}": 0.1 + index / 100 for index in range(8)}
    live = select_live(_candidates(times), (), (), JUDGING, now=NOW)
    assert live.live == ("edge0", "edge1", "edge2", "edge3")
    broken = dict(times, edge0=9.0, edge1=9.0, edge2=9.0)  # three live edges fail at once
    next_round = select_live(_candidates(broken), live.live, live.changes, JUDGING, now=NOW + 60)
    assert len(next_round.entered) == 2  # maxChanges 2 per window
    assert len(next_round.deferred) == 1
    assert len(next_round.live) == 4
    later = select_live(_candidates(broken), next_round.live, next_round.changes, JUDGING, now=NOW + 120)
    assert later.entered == ()  # the budget is spent for the window
    assert later.deferred
    after_window = select_live(_candidates(broken), later.live, later.changes, JUDGING, now=NOW + 60 + 601)
    assert len(after_window.entered) == 1
    assert set(after_window.live) == {"edge3", "edge4", "edge5", "edge6"}


def test_modes_override_health() -> None:
    times = {"a": 0.1, "b": 0.1, "c": 9.0, "d": 9.0, "e": 0.2}
    modes: dict[str, EdgeMode] = {"a": "unavailable", "c": "blindforce", "d": "force"}
    selected = select_live(_candidates(times, modes), (), (), JUDGING, now=NOW)
    assert "a" not in selected.live  # never, however fast
    assert "c" in selected.live  # always, even failing
    assert "d" not in selected.live  # force, but its last probe failed
    assert set(selected.live) == {"b", "c", "e"}
    assert selected.short


def test_never_empty_while_an_edge_ever_answered() -> None:
    first = select_live(_candidates({"a": 0.1, "b": 0.2}), (), (), JUDGING, now=NOW)
    down = [Candidate(h, "available", Tier.FAIL, 5.0, True) for h in ("a", "b", "c")]
    kept = select_live(down, first.live, first.changes, JUDGING, now=NOW + 60)
    assert kept.live == first.live
    assert kept.short
    fresh = select_live(down, (), (), JUDGING, now=NOW)
    assert len(fresh.live) == 3


def test_a_passing_canary_replaces_the_slowest_live_edge_in_its_own_zone_only() -> None:
    live = ("a", "b", "c", "d")
    averages = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}
    zones = ["example.org", "example.net"]
    published = place_canaries(
        live,
        zones,
        {"example.net": "canary"},
        {"canary": Tier.PASS_THRESHOLD},
        averages,
        failed_canaries=0,
        canary_killer=6,
    )
    assert published["example.org"] == live
    assert published["example.net"] == ("a", "b", "c", "canary")
    killed = place_canaries(
        live,
        zones,
        {"example.net": "canary"},
        {"canary": Tier.PASS_THRESHOLD},
        averages,
        failed_canaries=6,
        canary_killer=6,
    )
    assert killed["example.net"] == live
    failing = place_canaries(
        live, zones, {"example.net": "canary"}, {"canary": Tier.FAIL}, averages, failed_canaries=1, canary_killer=6
    )
    assert failing["example.net"] == live


@given(
    st.dictionaries(st.sampled_from([f"e{i}" for i in range(12)]), st.floats(0.01, 9.0), min_size=1),
    st.lists(st.sampled_from([f"e{i}" for i in range(12)]), unique=True, max_size=6),
    st.lists(st.floats(NOW - 1200, NOW), max_size=5),
)
def test_selection_invariants(times: dict[str, float], previous: list[str], changes: list[float]) -> None:
    candidates = _candidates(times)
    known = [h for h in previous if h in times]
    selected = select_live(candidates, known, changes, JUDGING, now=NOW)
    assert len(set(selected.live)) == len(selected.live)
    assert set(selected.live) <= set(times)
    if known or any(c.answered for c in candidates):
        assert selected.live  # never empty while an edge ever answered or a live set exists
    within = [t for t in selected.changes if t > NOW - JUDGING.per]
    if known:
        assert len(within) <= max(JUDGING.max_changes, len([t for t in changes if t > NOW - JUDGING.per]))


def test_hourly_averages_per_clock_hour() -> None:
    """Means per clock hour of the kept history, failures at the timeout value; the bound drops old hours."""
    history = History()
    for at, seconds, ok in [
        (7200.0, 0.2, True),
        (9000.0, 0.4, True),
        (10_799.0, TIMEOUT, False),
        (10_800.0, 1.0, True),
    ]:
        history = history.add(Probe(at, seconds, ok), limit=3)
    assert history.hourly() == [(7200.0, (0.4 + TIMEOUT) / 2, 2), (10_800.0, 1.0, 1)]
