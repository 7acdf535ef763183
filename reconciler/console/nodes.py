"""Every node's status as the console shows it: read from the status branch (``status/<node>/agent.yaml`` and
one file per resource), each node's age from the last commit that changed its folder, stale past a threshold,
and what changed in the desired state since the revision the node applied."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

if TYPE_CHECKING:
    from reconciler.console.service import Console


def _load(content: bytes) -> Any:
    try:
        return YAML(typ="safe").load(content)
    except YAMLError:
        return None


def nodes_from_files(
    files: dict[str, bytes], changed: dict[str, float], *, now: float, stale_after: float
) -> list[dict[str, Any]]:
    nodes: dict[str, dict[str, Any]] = {}
    for path, content in sorted(files.items()):
        parts = path.split("/")
        if len(parts) < 3:
            continue
        node = nodes.setdefault(parts[1], {"node": parts[1], "agent": None, "resources": []})
        document = _load(content)
        if not isinstance(document, dict):
            continue
        if parts[2] == "agent.yaml":
            node["agent"] = document
        else:
            node["resources"].append(document)
    shown = []
    for name, node in sorted(nodes.items()):
        agent = node["agent"] or {}
        age = max(0.0, now - changed.get(name, 0.0))
        shown.append(
            {
                "node": name,
                "appliedRevision": agent.get("lastAppliedRevision"),
                "attemptedRevision": agent.get("lastAttemptedRevision"),
                "conditions": agent.get("conditions", []),
                "problems": agent.get("problems", []),
                "resources": node["resources"],
                "ageSeconds": round(age, 1),
                "stale": age > stale_after,
            }
        )
    return shown


async def read_nodes(console: Console, status_branch: str, stale_after: float) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        console.clone.refresh()
        files, changed = console.clone.status(status_branch)
        nodes = nodes_from_files(files, changed, now=console.clock.now(), stale_after=stale_after)
        for node in nodes:
            applied = node["appliedRevision"] or ""
            node["changesSinceApplied"] = console.clone.changes_since(applied)
        return nodes

    async with console.lock:
        return await asyncio.to_thread(read)
