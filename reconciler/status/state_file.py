"""The local state file: what must survive a restart (revisions, condition history), as versioned JSON.

Written atomically by the agent; an unreadable or newer file is not trusted (the agent starts fresh and says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from reconciler.status.conditions import Condition

SCHEMA_VERSION = 1


@dataclass
class SavedState:
    applied_revision: str | None = None
    attempted_revision: str | None = None
    conditions: dict[str, tuple[Condition, ...]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        document = {
            "schemaVersion": SCHEMA_VERSION,
            "lastAppliedRevision": self.applied_revision,
            "lastAttemptedRevision": self.attempted_revision,
            "conditions": {k: [c.as_dict() for c in v] for k, v in sorted(self.conditions.items())},
            "extra": self.extra,
        }
        return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"


class StateFileError(ValueError):
    """The state file cannot be used."""


def decode(content: bytes) -> SavedState:
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateFileError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("schemaVersion") != SCHEMA_VERSION:
        version = document.get("schemaVersion") if isinstance(document, dict) else None
        raise StateFileError(f"schema version {version!r}, this agent reads {SCHEMA_VERSION}")
    try:
        return SavedState(
            applied_revision=document.get("lastAppliedRevision"),
            attempted_revision=document.get("lastAttemptedRevision"),
            conditions={
                key: tuple(Condition.from_dict(c) for c in value) for key, value in document["conditions"].items()
            },
            extra=dict(document.get("extra", {})),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise StateFileError(f"malformed: {exc}") from None
