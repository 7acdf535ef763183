"""The safety gate: refuse a plan that would remove or change too much of a target at once.

As in octoDNS: a target with at least ``min_size`` members may not lose or change more than ``max_percent`` of
them in one plan, unless forced (``--force`` for the run, or ``spec.safety.maxChangePercent`` per resource).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.planning.plan import TargetPlan

DEFAULT_MAX_PERCENT = 30
DEFAULT_MIN_SIZE = 10


@dataclass(frozen=True, slots=True)
class GateDecision:
    allowed: bool
    message: str = ""


def check(
    plan: TargetPlan[Any],
    *,
    max_percent: int = DEFAULT_MAX_PERCENT,
    min_size: int = DEFAULT_MIN_SIZE,
    forced: bool = False,
) -> GateDecision:
    """Allowed when forced, when the target is small, or when the destructive share is within the limit."""
    if forced or plan.size < min_size or plan.destructive == 0:
        return GateDecision(True)
    percent = 100 * plan.destructive / plan.size
    if percent <= max_percent:
        return GateDecision(True)
    return GateDecision(
        False,
        f"{plan.resource} would remove or change {plan.destructive} of {plan.size} members of {plan.target} "
        f"({percent:.0f}% > {max_percent}%): if that is intended, run once with --force, or raise "
        f"spec.safety.maxChangePercent on {plan.resource}",
    )
