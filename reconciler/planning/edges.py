"""Edge health tiers and the live set (pure): what an EdgeNetwork publishes, from each edge's probe history.

Tiers, in order, from an edge's probes (a probe that timed out, was refused, answered HTTP >= 400 or with a wrong
checksum records the timeout value):
- ``pass_threshold``: the last probe took less than ``goodEnough``;
- ``fail``: the last probe failed (timed out);
- ``pass_window``: the mean over ``window`` is below ``goodEnough``;
- ``pass_average``: the all-time mean is below ``goodEnough``;
- ``pass``: everything else.

Selection:
1. modes first: ``blindforce`` is always live, ``force`` is live unless its last probe failed, ``unavailable`` never;
2. previous live edges still ``pass_threshold`` stay live (sticky: a faster newcomer does not replace them);
3. the rest is filled tier by tier (``pass_threshold``, ``pass_window``, ``pass_average``, ``pass``), fastest
   all-time mean first, up to ``liveCount``;
4. the rotation limit: each edge that enters the live set is a change; at most ``maxChanges`` per ``per`` (the
   first publication is free). A change beyond the budget is deferred: the edge it would have replaced stays live,
   and the deferral is reported;
5. never empty while any edge ever answered: with nothing passing, the previous live set stays (or, the first
   time, the edges with the best all-time means); a set shorter than ``liveCount`` is published and reported.
Canaries: per zone, a canary whose last probe passed takes the place of that zone's slowest live edge (in that zone
only); once ``canaryKiller`` canary probes failed in a round, no canary is used that round.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from reconciler.model.edge_network import EdgeMode

FILL_ORDER = ("pass_threshold", "pass_window", "pass_average", "pass")


class Tier(StrEnum):
    # "pass" is a health tier here, not a password (ruff's S105 reads the names)
    PASS_THRESHOLD = "pass_threshold"  # noqa: S105
    FAIL = "fail"
    PASS_WINDOW = "pass_window"  # noqa: S105
    PASS_AVERAGE = "pass_average"  # noqa: S105
    PASS = "pass"  # noqa: S105


@dataclass(frozen=True, slots=True)
class Probe:
    at: float
    seconds: float  # the timeout value when it failed
    ok: bool = True


@dataclass(frozen=True)
class History:
    """One edge's probes, oldest first, at most ``limit`` of them."""

    probes: tuple[Probe, ...] = ()

    def add(self, probe: Probe, *, limit: int) -> History:
        return History((*self.probes, probe)[-limit:])

    @property
    def last(self) -> Probe | None:
        return self.probes[-1] if self.probes else None

    @property
    def average(self) -> float:
        """All-time mean (of the kept history); infinite with no probe."""
        return sum(p.seconds for p in self.probes) / len(self.probes) if self.probes else math.inf

    def window_average(self, *, now: float, window: float) -> float:
        recent = [p.seconds for p in self.probes if p.at > now - window]
        return sum(recent) / len(recent) if recent else math.inf

    def hourly(self) -> list[tuple[float, float, int]]:
        """The mean per clock hour of the kept history: (start of the hour, mean seconds, probes), oldest first;
        failed probes count at the timeout value, as in every other mean."""
        hours: dict[float, list[float]] = {}
        for probe in self.probes:
            hours.setdefault(probe.at - probe.at % 3600, []).append(probe.seconds)
        return [(hour, sum(times) / len(times), len(times)) for hour, times in sorted(hours.items())]

    @property
    def answered(self) -> bool:
        return any(p.ok for p in self.probes)


@dataclass(frozen=True)
class Judging:
    """The network's settings that tiers and selection need, in seconds."""

    good_enough: float
    window: float
    live_count: int
    max_changes: int
    per: float


def tier(history: History, judging: Judging, *, now: float) -> Tier:
    last = history.last
    if last is not None and last.ok and last.seconds < judging.good_enough:
        return Tier.PASS_THRESHOLD
    if last is not None and not last.ok:
        return Tier.FAIL
    if history.window_average(now=now, window=judging.window) < judging.good_enough:
        return Tier.PASS_WINDOW
    if history.average < judging.good_enough:
        return Tier.PASS_AVERAGE
    return Tier.PASS


@dataclass(frozen=True)
class Candidate:
    host: str
    mode: EdgeMode
    tier: Tier
    average: float
    answered: bool


@dataclass(frozen=True)
class Selection:
    live: tuple[str, ...]
    changes: tuple[float, ...]  # times of live-set changes within the rotation window (the budget spent)
    entered: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    deferred: tuple[str, ...] = ()  # edges that would have entered but the rotation budget was spent
    short: bool = False  # fewer than liveCount
    reasons: Mapping[str, str] = field(default_factory=dict)


def select_live(
    candidates: Sequence[Candidate],
    previous: Sequence[str],
    changes: Iterable[float],
    judging: Judging,
    *,
    now: float,
) -> Selection:
    """The live set from the candidates' tiers, the previous live set and the changes already made (times)."""
    by_host = {c.host: c for c in candidates}
    spent = [t for t in changes if t > now - judging.per]
    live: list[str] = [c.host for c in candidates if c.mode == "blindforce"]
    live += [c.host for c in candidates if c.mode == "force" and c.tier != Tier.FAIL and c.host not in live]
    eligible = [c for c in candidates if c.mode == "available" and c.host not in live]
    sticky = [
        h
        for h in previous
        if h in by_host and by_host[h].mode == "available" and by_host[h].tier == Tier.PASS_THRESHOLD
    ]
    for host in sticky:
        if len(live) < judging.live_count and host not in live:
            live.append(host)
    for wanted in FILL_ORDER:
        ranked = sorted(
            (c for c in eligible if c.tier == wanted and c.host not in live), key=lambda c: (c.average, c.host)
        )
        for candidate in ranked:
            if len(live) >= judging.live_count:
                break
            live.append(candidate.host)
    if not live:  # nothing passes: never publish an empty set while an edge ever answered
        kept = [h for h in previous if h in by_host and by_host[h].mode != "unavailable"]
        answered = sorted((c for c in candidates if c.answered and c.mode != "unavailable"), key=lambda c: c.average)
        live = kept or [c.host for c in answered[: judging.live_count]]
    live, spent, deferred = _within_budget(live, previous, spent, by_host, judging, now=now)
    entered = tuple(h for h in live if h not in previous)
    left = tuple(h for h in previous if h not in live)
    return Selection(tuple(live), tuple(spent), entered, left, tuple(deferred), len(live) < judging.live_count)


def _within_budget(
    live: list[str],
    previous: Sequence[str],
    spent: list[float],
    by_host: Mapping[str, Candidate],
    judging: Judging,
    *,
    now: float,
) -> tuple[list[str], list[float], list[str]]:
    """Keep at most the remaining budget of newcomers; each one deferred leaves a previous edge live in its place.
    The first publication (no previous set) and operator modes cost nothing."""
    if not previous:
        return live, spent, []
    newcomers = [h for h in live if h not in previous and by_host[h].mode == "available"]
    budget = max(0, judging.max_changes - len(spent))
    admitted, deferred = newcomers[:budget], newcomers[budget:]
    if not deferred:
        return live, [*spent, *([now] * len(admitted))], []
    kept = [h for h in live if h not in deferred]
    # the edges the deferred ones would have replaced stay: previous live edges, best first, still allowed
    staying = sorted(
        (h for h in previous if h not in kept and h in by_host and by_host[h].mode != "unavailable"),
        key=lambda h: (by_host[h].tier == Tier.FAIL, by_host[h].average),
    )
    kept += staying[: len(deferred)]
    return kept, [*spent, *([now] * len(admitted))], deferred


def place_canaries(
    live: Sequence[str],
    zones: Sequence[str],
    canaries: Mapping[str, str],
    canary_tiers: Mapping[str, Tier],
    averages: Mapping[str, float],
    *,
    failed_canaries: int,
    canary_killer: int,
) -> dict[str, tuple[str, ...]]:
    """Per zone, the records it publishes: the live set, with that zone's passing canary in place of its slowest
    live edge. All canaries are off for the round once ``canary_killer`` canary probes failed."""
    published: dict[str, tuple[str, ...]] = {}
    enabled = failed_canaries < canary_killer
    for zone in zones:
        records = list(live)
        canary = canaries.get(zone)
        if enabled and canary is not None and canary_tiers.get(canary) == Tier.PASS_THRESHOLD and canary not in records:
            if records:
                slowest = max(records, key=lambda h: (averages.get(h, math.inf), h))
                records[records.index(slowest)] = canary
            else:
                records.append(canary)
        published[zone] = tuple(records)
    return published
