"""Every pool strategy by its ``type`` (PURE): the one list a new strategy joins, beside its module in
``health/`` and its settings block in ``model/health_strategy``."""

from __future__ import annotations

from reconciler.health import consecutive, latency, outlier
from reconciler.health.strategy import Strategy

STRATEGIES: dict[str, Strategy] = {s.type: s for s in (consecutive.STRATEGY, latency.STRATEGY, outlier.STRATEGY)}


def strategy_of(state: object) -> Strategy:
    """The strategy a member's state belongs to."""
    for strategy in STRATEGIES.values():
        if isinstance(state, strategy.state_type):
            return strategy
    raise TypeError(f"{type(state).__name__} is no strategy's state")
