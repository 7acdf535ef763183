"""The interface every pool strategy has (PURE); ``health/registry`` finds one by its ``type``.

A ``Strategy`` knows its state: where a member starts, how one observation moves it, until when a member cools
down and how many failures it has in a row (what status, metrics and the old tool's API show), and how the state
is written to the state file and read back. Callers (pool planning, the IP-pool capability and its old routes)
ask the registry and never branch on a strategy's type or state class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from reconciler.health.base import Observation, Verdict


class Strategy(Protocol):
    state_type: type[Any]  # the state class its members have
    type: str  # as HealthStrategy.spec.type names it

    def initial(self) -> Any:
        """A member's state before anything was seen of it."""
        ...

    def step(
        self, state: Any, observation: Observation | None, *, settings: Any, now: float, others: Sequence[Any]
    ) -> Any:
        """The state after ``observation`` (None: only time passed) at ``now``; ``others``: the set's other states
        (of this strategy)."""
        ...

    def cooldown_until(self, state: Any) -> float | None:
        """Until when the member is held out (banned, ejected), if it is."""
        ...

    def in_a_row(self, state: Any) -> int:
        """Its failures in a row."""
        ...

    def to_json(self, state: Any) -> dict[str, Any]:
        """The state's own fields as JSON values (the verdict is written beside them)."""
        ...

    def from_json(self, data: Mapping[str, Any], verdict: Verdict) -> Any:
        """The inverse of ``to_json``."""
        ...
