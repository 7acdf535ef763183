"""Console API tokens (hashed in their file), and nodes' staleness as the console lists them."""

from __future__ import annotations

from reconciler.console.auth import TokenBook, hash_token
from reconciler.settings import GitIdentity
from reconciler.status.fleet import fleet_rows


def test_tokens_and_node_staleness(tmp_path: object) -> None:
    book = TokenBook([(hash_token("s3cret"), GitIdentity("alice", "alice@example.org"))])
    assert book.user("s3cret") == GitIdentity("alice", "alice@example.org")
    assert book.user("s3cret ") is None
    files = {
        "status/gw-1/agent.yaml": b"lastAppliedRevision: abc\nconditions: []\n",
        "status/gw-1/EgressGateway/gateways.yaml": b"kind: EgressGateway\nname: gateways\nconditions: []\n",
        "status/gw-2/agent.yaml": b"lastAppliedRevision: def\n",
    }
    by_node = {
        "gw-1": ({k: v for k, v in files.items() if "/gw-1/" in k}, 1000.0),
        "gw-2": ({k: v for k, v in files.items() if "/gw-2/" in k}, 500.0),
    }
    nodes = fleet_rows(by_node, now=1100.0, stale_after=300.0)
    assert [(n["node"], n["stale"], n["appliedRevision"]) for n in nodes] == [
        ("gw-1", False, "abc"),
        ("gw-2", True, "def"),
    ]
    assert nodes[0]["resources"][0]["name"] == "gateways"
