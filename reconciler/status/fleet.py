"""The fleet view (pure): every node's status files -> one row per node with its applied revision, conditions,
problems, resources, age, whether it is stale and whether it said it stopped. The age runs from the node's last
heartbeat (agent.yaml), or, for a node that publishes none, from the last commit that changed its files."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError


def _load(content: bytes) -> Any:
    try:  # libyaml's parser, not the pure one: a console page shows hundreds of nodes' files (~0.4 ms each)
        return YAML(typ="safe").load(content)
    except YAMLError:
        return None


def _seconds(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def fleet_rows(
    nodes: Mapping[str, tuple[Mapping[str, bytes], float]], *, now: float, stale_after: float
) -> list[dict[str, Any]]:
    """``nodes``: node -> (its status files by path, when they last changed)."""
    rows = []
    for name, (files, changed_at) in sorted(nodes.items()):
        agent: dict[str, Any] = {}
        resources = []
        for path, content in sorted(files.items()):
            document = _load(content)
            if not isinstance(document, dict):
                continue
            if path.endswith("/agent.yaml") and path.count("/") == 2:
                agent = document
            else:
                resources.append(document)
        seen = _seconds(agent["heartbeat"]) if agent.get("heartbeat") else None
        age = max(0.0, now - (seen if seen is not None else changed_at))
        conditions = agent.get("conditions", [])
        ready = next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), {})
        rows.append(
            {
                "node": name,
                "appliedRevision": agent.get("lastAppliedRevision"),
                "attemptedRevision": agent.get("lastAttemptedRevision"),
                "conditions": conditions,
                "problems": agent.get("problems", []),
                "resources": resources,
                "ageSeconds": round(age, 1),
                "stale": age > stale_after,
                "stopped": ready.get("reason") == "Stopped",  # its last word was that it stopped
            }
        )
    return rows
