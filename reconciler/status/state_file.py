"""The local state file: what must survive a restart (revisions, condition history, and each capability's own
part), as versioned JSON.

Written atomically by the agent; an unreadable or newer file is not trusted (the agent starts fresh and says so).
Each capability's part carries its own version, so one capability changing its format does not cost the others
theirs. Version 1 files (before capabilities had parts of their own) are read and converted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from reconciler.status.conditions import Condition

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class CapabilityState:
    """One capability's part: its own format version and its JSON values."""

    version: int
    state: dict[str, Any]


@dataclass
class SavedState:
    applied_revision: str | None = None
    attempted_revision: str | None = None
    conditions: dict[str, tuple[Condition, ...]] = field(default_factory=dict)
    capabilities: dict[str, CapabilityState] = field(default_factory=dict)  # by kind
    # "Kind/name" of every resource a pass has been made for and that was not forgotten since: what a removed
    # resource made is removed also by an agent that never held it in memory (a restart, a run --once --force)
    made: set[str] = field(default_factory=set)

    def encode(self) -> bytes:
        document = {
            "schemaVersion": SCHEMA_VERSION,
            "lastAppliedRevision": self.applied_revision,
            "lastAttemptedRevision": self.attempted_revision,
            "made": sorted(self.made),
            "conditions": {k: [c.as_dict() for c in v] for k, v in sorted(self.conditions.items())},
            "capabilities": {
                kind: {"version": part.version, "state": part.state} for kind, part in sorted(self.capabilities.items())
            },
        }
        return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"


class StateFileError(ValueError):
    """The state file cannot be used."""


def decode(content: bytes) -> SavedState:
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateFileError(f"not JSON: {exc}") from None
    version = document.get("schemaVersion") if isinstance(document, dict) else None
    if not isinstance(document, dict) or version not in (1, SCHEMA_VERSION):
        raise StateFileError(f"schema version {version!r}, this agent reads 1 and {SCHEMA_VERSION}")
    try:
        if version == 1:
            capabilities = _from_version_1(document.get("extra", {}))
        else:
            capabilities = {
                str(kind): CapabilityState(int(part["version"]), dict(part["state"]))
                for kind, part in document.get("capabilities", {}).items()
            }
        conditions = {
            key: tuple(Condition.from_dict(c) for c in value) for key, value in document["conditions"].items()
        }
        made = document.get("made")
        return SavedState(
            applied_revision=document.get("lastAppliedRevision"),
            attempted_revision=document.get("lastAttemptedRevision"),
            conditions=conditions,
            capabilities=capabilities,
            # a file from before "made": every resource with conditions had passes
            made={str(m) for m in made} if isinstance(made, list) else {k for k in conditions if "/" in k},
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise StateFileError(f"malformed: {exc}") from None


def _from_version_1(extra: dict[str, Any]) -> dict[str, CapabilityState]:
    """Version 1 kept the proxy's down targets under ``extra.proxyTargetsDown``."""
    down = extra.get("proxyTargetsDown")
    return {"TCPProxy": CapabilityState(1, {"targetsDown": down})} if isinstance(down, dict) else {}
