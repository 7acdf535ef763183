"""Backends and how one is picked: round-robin (smooth, weighted), random (weighted), least-connections.

A ``BackendSet`` holds the targets of one app with their health and active connections. Picking never returns a
target that is down, drained (weight 0), unresolved or ejected; an empty choice is ``None`` and the caller
decides what the client gets.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from reconciler.health.outlier import OutlierState
from reconciler.model.values import Balance


@dataclass(eq=False)
class Backend:
    """One target. ``address`` is what the operator wrote; ``resolved`` the (host, port) to connect to."""

    address: str
    weight: int = 1
    up: bool = True
    resolved: tuple[str, int] | None = None
    reason: str = ""
    active: int = 0
    current: float = 0.0  # smooth weighted round-robin state
    connections: int = 0
    failures: int = 0
    outlier: OutlierState = field(default_factory=OutlierState)  # failed connects in a row, ejections
    ejected: bool = False  # taken out by the data path for failing connects (outlier.ejected, kept flat for speed)
    handed_out: float = float("-inf")  # when it was last picked for a connection (for min_reuse)

    @property
    def usable(self) -> bool:
        return self.up and self.weight > 0 and self.resolved is not None and not self.ejected


class Balancer(Protocol):
    def pick(self, backends: list[Backend], exclude: frozenset[int]) -> Backend | None: ...


def _candidates(backends: Iterable[Backend], exclude: frozenset[int]) -> list[Backend]:
    # on the per-connection path: the test of ``usable`` inlined, the exclusion tested only when there is one
    usable = [b for b in backends if b.up and b.weight > 0 and b.resolved is not None and not b.ejected]
    return [b for b in usable if id(b) not in exclude] if exclude else usable


class RoundRobin:
    """nginx's smooth weighted round-robin: with equal weights, a b c a b c; with 5:1:1, a a b a c a a."""

    def pick(self, backends: list[Backend], exclude: frozenset[int]) -> Backend | None:
        candidates = _candidates(backends, exclude)
        if not candidates:
            return None
        total = 0
        best: Backend | None = None
        for backend in candidates:
            backend.current += backend.weight
            total += backend.weight
            if best is None or backend.current > best.current:
                best = backend
        assert best is not None
        best.current -= total
        return best


@dataclass
class Random:
    rng: random.Random = field(default_factory=random.Random)

    def pick(self, backends: list[Backend], exclude: frozenset[int]) -> Backend | None:
        candidates = _candidates(backends, exclude)
        if not candidates:
            return None
        return self.rng.choices(candidates, weights=[b.weight for b in candidates])[0]


class LeastConnections:
    """Fewest active connections per unit of weight; ties go round-robin so that idle sets still spread."""

    def __init__(self) -> None:
        self._tie = RoundRobin()

    def pick(self, backends: list[Backend], exclude: frozenset[int]) -> Backend | None:
        candidates = _candidates(backends, exclude)
        if not candidates:
            return None
        lowest = min(b.active / b.weight for b in candidates)
        tied = [b for b in candidates if b.active / b.weight == lowest]
        return self._tie.pick(tied, frozenset())


def balancer(kind: Balance) -> Balancer:
    if kind == "random":
        return Random()
    if kind == "least-connections":
        return LeastConnections()
    return RoundRobin()
