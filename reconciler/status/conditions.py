"""Conditions as Kubernetes and Flux use them: Ready, Degraded, Stalled, each with reason and message.

``lastTransitionTime`` changes only when a condition's status changes, so an unchanged world produces an
unchanged status document (and no status commit).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

ConditionType = Literal["Ready", "Degraded", "Stalled"]
Truth = Literal["True", "False", "Unknown"]


@dataclass(frozen=True, slots=True)
class Condition:
    type: ConditionType
    status: Truth
    reason: str
    message: str = ""
    last_transition_time: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition_time,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Condition:
        return cls(
            type=data["type"],
            status=data["status"],
            reason=data.get("reason", ""),
            message=data.get("message", ""),
            last_transition_time=data.get("lastTransitionTime", ""),
        )


def timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def carry_over(previous: Iterable[Condition], current: Iterable[Condition], *, now: float) -> tuple[Condition, ...]:
    """The current conditions, keeping each one's transition time while its status stays the same."""
    before = {c.type: c for c in previous}
    result = []
    for condition in current:
        old = before.get(condition.type)
        if old is not None and old.status == condition.status and old.last_transition_time:
            result.append(replace(condition, last_transition_time=old.last_transition_time))
        else:
            result.append(replace(condition, last_transition_time=timestamp(now)))
    return tuple(sorted(result, key=lambda c: c.type))


def ready(reason: str, message: str = "") -> tuple[Condition, ...]:
    return (
        Condition("Ready", "True", reason, message),
        Condition("Degraded", "False", reason),
        Condition("Stalled", "False", reason),
    )


def degraded(reason: str, message: str) -> tuple[Condition, ...]:
    return (
        Condition("Ready", "False", reason, message),
        Condition("Degraded", "True", reason, message),
        Condition("Stalled", "False", reason),
    )


def stopped(message: str) -> tuple[Condition, ...]:
    """The agent has stopped: nothing is reconciled until it runs again (what it applied is still in place)."""
    return (
        Condition("Ready", "False", "Stopped", message),
        Condition("Degraded", "False", "Stopped"),
        Condition("Stalled", "False", "Stopped"),
    )


def stalled(reason: str, message: str) -> tuple[Condition, ...]:
    return (
        Condition("Ready", "False", reason, message),
        Condition("Degraded", "False", reason),
        Condition("Stalled", "True", reason, message),
    )
