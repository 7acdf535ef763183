"""The console's nodes view over a fake clone: what changed since each node's revision is asked once per
revision, not once per node (a page shows hundreds of nodes, mostly on the same revision)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any, cast

from reconciler.console.nodes import read_nodes
from reconciler.system.status_fleet import NodeFiles
from reconciler.testing import FakeClock

if TYPE_CHECKING:
    from reconciler.console.service import Console

A, B = "a" * 40, "b" * 40


class Clone:
    def __init__(self, applied: dict[str, str]) -> None:
        self.applied = applied
        self.asked: Counter[str] = Counter()
        self.refreshed = 0

    def refresh(self) -> str:
        self.refreshed += 1
        return A

    def status(self, branch: str) -> dict[str, NodeFiles]:
        assert branch == "reconciler-status"
        return {
            node: NodeFiles({f"status/{node}/agent.yaml": f"lastAppliedRevision: {rev}\n".encode()}, 1_799_999_990.0)
            for node, rev in self.applied.items()
        }

    def changes_since(self, revision: str) -> str:
        self.asked[revision] += 1
        return "" if revision == A else f" {revision[:7]}..{A[:7]}: 1 file changed"


def test_changes_since_applied_are_read_once_per_revision() -> None:
    clone = Clone({f"gw-{i}": (A if i % 10 else B) for i in range(100)})
    console: Any = type("FakeConsole", (), {})()
    console.clone, console.clock, console.lock = clone, FakeClock(), asyncio.Lock()
    rows = asyncio.run(read_nodes(cast("Console", console), "reconciler-status", 900.0))
    assert len(rows) == 100
    assert clone.asked == Counter({A: 1, B: 1})
    assert clone.refreshed == 1
    by_node = {row["node"]: row for row in rows}
    assert by_node["gw-1"]["changesSinceApplied"] == ""
    assert by_node["gw-10"]["changesSinceApplied"] == " bbbbbbb..aaaaaaa: 1 file changed"
    assert by_node["gw-10"]["appliedRevision"] == B
    assert not by_node["gw-10"]["stale"]  # 10 s old against 15 minutes
