"""Every node's status as the console shows it: read from the status refs of the remote, whatever the layout
(``system/status_fleet``), as fleet rows (``status/fleet``: stale past a threshold), with what changed in the
desired state since the revision each node applied."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from reconciler.status.fleet import fleet_rows

if TYPE_CHECKING:
    from reconciler.console.service import Console


async def read_nodes(console: Console, status_branch: str, stale_after: float) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        console.clone.refresh()
        found = console.clone.status(status_branch)
        nodes = {name: (node.files, node.changed_at) for name, node in found.items()}
        rows = fleet_rows(nodes, now=console.clock.now(), stale_after=stale_after)
        changes: dict[str, str] = {}  # a fleet is mostly on a few revisions: one diff each, not one per node
        for row in rows:
            revision = row["appliedRevision"] or ""
            if revision not in changes:
                changes[revision] = console.clone.changes_since(revision)
            row["changesSinceApplied"] = changes[revision]
        return rows

    async with console.lock:
        return await asyncio.to_thread(read)
