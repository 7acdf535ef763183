"""The text editing every kind's console edits share: a file with CRLF line endings keeps them."""

from __future__ import annotations

from reconciler.console.allow_list_edits import Entry, add_entry, remove_entry
from reconciler.console.edge_network_edits import set_edge_mode
from reconciler.console.ip_pool_edits import set_banned
from tests.unit.console.test_allow_list_edits import PARTNERS, changed
from tests.unit.console.test_edge_network_edits import EDGES
from tests.unit.console.test_ip_pool_edits import BLOCK_BANNED


def test_files_with_crlf_line_endings_keep_them() -> None:
    """A file committed from Windows (CRLF): the lines an edit writes end the same way, so the diff shows only
    them, and taking the edit back gives the file as it was."""
    crlf = PARTNERS.replace("\n", "\r\n")
    added = add_entry(crlf, "partners", Entry("ip", "203.0.113.50", comment="windows"))
    assert added.count("\r\n") == added.count("\n")
    assert len(added.splitlines()) == len(crlf.splitlines()) + 2
    assert remove_entry(added, "partners", "203.0.113.50") == crlf
    edges = EDGES.replace("\n", "\r\n")
    down = set_edge_mode(edges, "example-org", "edge2.example.net", "unavailable", "rack move")
    assert down.count("\r\n") == down.count("\n")
    assert set_edge_mode(down, "example-org", "edge2.example.net", "available", "") == edges
    pool = BLOCK_BANNED.replace("\n", "\r\n")
    banned = set_banned(pool, "p", "203.0.113.3", True)
    assert banned.count("\r\n") == banned.count("\n")
    assert changed(pool, banned) == ["+    - 203.0.113.3"]  # (_changed compares lines without their ends)
    mixed = PARTNERS.replace("\n", "\r\n", 1)  # both endings: edited as it is, nothing else rewritten
    assert add_entry(mixed, "partners", Entry("ip", "203.0.113.50")).startswith(mixed.split("\n", 2)[0])
