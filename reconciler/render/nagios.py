"""Nagios-compatible checks of an EdgeNetwork (pure): integrity (edges whose object failed its checksum),
latency (the slowest live edge's last probe) and rotation (live-set changes in the window). Plugin exit codes
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; one line with performance data; the old tool's service names.

The thresholds say "at or above this": a check with a critical threshold below its warning one is refused
(the old tool shipped latency defaults with critical below warning).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
SERVICES = {"integrity": "EDGE_TESTMATCH", "latency": "ACTIVE_EDGE_LATENCY", "rotation": "EDGE_ROTATE"}
DEFAULTS = {"integrity": (1.0, 2.0), "latency": (1.0, 2.0), "rotation": (5.0, 10.0)}


@dataclass(frozen=True)
class NagiosResult:
    code: int
    service: str
    text: str
    perf: str = ""

    @property
    def line(self) -> str:
        return f"{self.service} {STATES[self.code]} - {self.text}" + (f" | {self.perf}" if self.perf else "")


def _level(value: float, warning: float, critical: float) -> int:
    return 2 if value >= critical else 1 if value >= warning else 0


def thresholds(check: str, warning: float | None, critical: float | None) -> tuple[float, float]:
    default_warning, default_critical = DEFAULTS[check]
    chosen = (default_warning if warning is None else warning, default_critical if critical is None else critical)
    if chosen[1] < chosen[0]:
        raise ValueError(f"critical ({chosen[1]:g}) is below warning ({chosen[0]:g})")
    return chosen


def integrity(network: str, errors: Mapping[str, str], warning: float, critical: float) -> NagiosResult:
    failing = sorted(edge for edge, error in errors.items() if error.startswith(("checksum", "md5")))
    text = f"{network}: {len(failing)} edge(s) serve a wrong object" + (f": {', '.join(failing)}" if failing else "")
    perf = f"mismatched={len(failing)};{warning:g};{critical:g};0"
    return NagiosResult(_level(len(failing), warning, critical), SERVICES["integrity"], text, perf)


def latency(
    network: str, live: Sequence[str], last: Mapping[str, float], warning: float, critical: float
) -> NagiosResult:
    timed = [(last[edge], edge) for edge in live if edge in last]
    if not timed:
        return NagiosResult(3, SERVICES["latency"], f"{network}: no live edge has been probed")
    slowest, edge = max(timed)
    perf = f"slowest={slowest:.3f}s;{warning:g};{critical:g};0"
    text = f"{network}: slowest live edge {edge} took {slowest:.3f}s"
    return NagiosResult(_level(slowest, warning, critical), SERVICES["latency"], text, perf)


def rotation(
    network: str, changes: Sequence[float], *, now: float, per: float, warning: float, critical: float
) -> NagiosResult:
    recent = sum(1 for at in changes if at > now - per)
    perf = f"changes={recent};{warning:g};{critical:g};0"
    text = f"{network}: {recent} live-set change(s) in the last {per:g}s"
    return NagiosResult(_level(recent, warning, critical), SERVICES["rotation"], text, perf)
