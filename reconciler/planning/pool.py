"""IP-pool health (pure): each member's requests from the access log, judged by the pool's HealthStrategy, with
manual bans from git on top.

- A request fails when its status is one of ``failure.statuses`` (``502`` or a class ``5xx``).
- Requests are stepped through the strategy in log order at their own time (a cool-down runs from the failure that
  started it, also when a backlog is read late); then the strategy is brought to ``now`` (a cool-down that ended
  releases the member, without a new request).
- A member in ``banned`` is unavailable with the reason ``Banned`` whatever its requests say; taken out of
  ``banned``, it comes back with a fresh state (no old failures count against it).
- Each member keeps its last ``history`` requests and counts per status class (what introspection shows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.health import consecutive, latency, outlier
from reconciler.health.base import Observation, Verdict
from reconciler.health.registry import STRATEGIES, strategy_of
from reconciler.model.health_strategy import HealthStrategy
from reconciler.model.ip_pool import FailureRule

StrategyState = consecutive.ConsecutiveState | latency.LatencyState | outlier.OutlierState
BANNED = "Banned"


def failure_test(rule: FailureRule) -> frozenset[int]:
    """Every status that counts as a failure under ``rule`` (classes expanded: '5xx' -> 500..599)."""
    failing: set[int] = set()
    for status in rule.statuses:
        if status.endswith("xx"):
            base = int(status[0]) * 100
            failing.update(range(base, base + 100))
        else:
            failing.add(int(status))
    return frozenset(failing)


def initial(strategy: HealthStrategy) -> StrategyState:
    return STRATEGIES[strategy.spec.type].initial()  # type: ignore[no-any-return]


def _step(
    strategy: HealthStrategy,
    state: StrategyState,
    observation: Observation | None,
    *,
    now: float,
    others: Iterable[StrategyState],
) -> StrategyState:
    rule = STRATEGIES[strategy.spec.type]
    if not isinstance(state, rule.state_type):  # the strategy's type changed: the member starts afresh
        state = rule.initial()
    peers = [s for s in others if isinstance(s, rule.state_type)]
    return rule.step(state, observation, settings=strategy.spec.settings, now=now, others=peers)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class MemberHealth:
    """One member: its strategy state, its last requests (status, time) and its requests per status class."""

    state: StrategyState
    history: tuple[tuple[int, float], ...] = ()
    requests: Mapping[str, int] = field(default_factory=dict)
    banned: bool = False

    @property
    def verdict(self) -> Verdict:
        if self.banned:
            return Verdict(False, f"{BANNED}: listed in spec.banned")
        return self.state.verdict


def judge(
    strategy: HealthStrategy,
    members: Sequence[str],
    known: Mapping[str, MemberHealth],
    requests: Mapping[str, Sequence[tuple[int, float]]],
    *,
    failing: frozenset[int],
    banned: Iterable[str],
    history: int,
    now: float,
) -> dict[str, MemberHealth]:
    """Every member's health after ``requests`` (per member, in log order) and at ``now``. Members not in
    ``members`` are forgotten; new ones start fresh."""
    held = set(banned)
    judged: dict[str, MemberHealth] = {}
    for member in members:
        health = known.get(member) or MemberHealth(initial(strategy))
        if health.banned and member not in held:  # released by hand: a fresh start
            health = MemberHealth(initial(strategy), health.history, health.requests)
        state = health.state
        others = [h.state for m, h in known.items() if m != member]
        counted = dict(health.requests)
        seen = list(requests.get(member, ()))
        for status, at in seen:
            state = _step(strategy, state, Observation(status not in failing, at), now=at, others=others)
            key = f"{status // 100}xx"
            counted[key] = counted.get(key, 0) + 1
        state = _step(strategy, state, None, now=now, others=others)
        kept = (*health.history, *seen[-history:])[-history:]
        judged[member] = replace(health, state=state, history=kept, requests=counted, banned=member in held)
    return judged


# --- the capability's part of the state file: a member's health as JSON ---------------------------------------


def health_to_json(health: MemberHealth) -> dict[str, Any]:
    state = health.state
    rule = strategy_of(state)
    shown: dict[str, Any] = {"available": state.verdict.available, "reason": state.verdict.reason}
    shown |= {"type": rule.type, **rule.to_json(state)}
    return {
        "state": shown,
        "history": [list(item) for item in health.history],
        "requests": dict(health.requests),
        "banned": health.banned,
    }


def health_from_json(data: Mapping[str, Any]) -> MemberHealth:
    shown = data["state"]
    verdict = Verdict(bool(shown["available"]), str(shown["reason"]))
    state: StrategyState = STRATEGIES[str(shown["type"])].from_json(shown, verdict)
    return MemberHealth(
        state,
        tuple((int(s), float(a)) for s, a in data.get("history", [])),
        {str(k): int(v) for k, v in dict(data.get("requests", {})).items()},
        bool(data.get("banned", False)),
    )
