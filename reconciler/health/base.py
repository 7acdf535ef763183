"""What every strategy takes and gives: an observation of one member, and a verdict with its reason."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Observation:
    """One outcome for one member: passed or failed, when, and how long it took (when known)."""

    ok: bool
    at: float
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    available: bool
    reason: str = ""


AVAILABLE = Verdict(True)
