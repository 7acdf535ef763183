"""Console edits on the text of a YAML file: an added or removed entry changes only its own lines (comments, quoting,
order and blank lines elsewhere kept byte for byte); protected entries cannot be removed; duplicates are refused;
an empty list, a multi-document file and values that need quoting are handled; the result always parses."""

from __future__ import annotations

import difflib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.console.auth import TokenBook, hash_token
from reconciler.console.edits import (
    EditError,
    Entry,
    add_entry,
    parse_entries,
    remove_entry,
    set_banned,
    set_edge_mode,
)
from reconciler.loading.yaml_reader import read_yaml
from reconciler.settings import GitIdentity
from reconciler.status.fleet import fleet_rows
from tests.conftest import EXAMPLE

PARTNERS = (EXAMPLE / "egress" / "partners.yaml").read_text()

TWO_DOCUMENTS = """# first
apiVersion: reconciler/v1
kind: EgressAllowList
metadata: {name: one}
spec:
  entries: []   # nothing yet
---
apiVersion: reconciler/v1
kind: EgressAllowList
metadata:
  name: two
spec:
  entries:
  - ip: "203.0.113.1"    # quoted on purpose
  # a comment between entries
  - ip: 203.0.113.2
  resolveInterval: 60s
"""


def _changed(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_an_added_entry_is_its_own_lines_only() -> None:
    entry = Entry(
        "domain", "new.partner.example", ("443", "8000-8001"), "tcp", True, "2027-06-30", "a: b # not a comment"
    )
    after = add_entry(PARTNERS, "partners", entry)
    assert _changed(PARTNERS, after) == [
        "+    - domain: new.partner.example",
        "+      ports: [443, 8000-8001]",
        "+      protocol: tcp",
        "+      protected: true",
        "+      expires: 2027-06-30",
        "+      comment: 'a: b # not a comment'",
    ]
    assert after.startswith(PARTNERS)  # every line before it, comments included, byte for byte
    added = parse_entries(after, "partners")[-1]
    assert (added["comment"], added["protected"]) == ("a: b # not a comment", True)


def test_a_removed_entry_takes_its_lines_only_and_protected_ones_stay() -> None:
    after = remove_entry(PARTNERS, "partners", "203.0.113.7")
    assert _changed(PARTNERS, after) == ["-    - ip: 203.0.113.7", "-      comment: partner's fixed webhook sender"]
    last = remove_entry(PARTNERS, "partners", "PROMO.partner.example.")  # names compare as names
    assert len(_changed(PARTNERS, last)) == 5
    with pytest.raises(EditError, match="protected") as refused:
        remove_entry(PARTNERS, "partners", "198.51.100.0/28")
    assert refused.value.status == 409
    with pytest.raises(EditError) as missing:
        remove_entry(PARTNERS, "partners", "203.0.113.99")
    assert missing.value.status == 404


def test_duplicates_other_documents_and_an_empty_list() -> None:
    with pytest.raises(EditError) as duplicate:
        add_entry(PARTNERS, "partners", Entry("ip", "203.0.113.7"))
    assert duplicate.value.status == 409
    with pytest.raises(EditError) as unknown:
        add_entry(PARTNERS, "nobody", Entry("ip", "203.0.113.8"))
    assert unknown.value.status == 404
    first = add_entry(TWO_DOCUMENTS, "one", Entry("ip", "203.0.113.9"))
    assert _changed(TWO_DOCUMENTS, first) == [
        "-  entries: []   # nothing yet",
        "+  entries:   # nothing yet",
        "+    - ip: 203.0.113.9",
    ]
    second = add_entry(TWO_DOCUMENTS, "two", Entry("ip", "2001:db8::1"))
    assert _changed(TWO_DOCUMENTS, second) == ["+  - ip: 2001:db8::1"]
    assert '  - ip: "203.0.113.1"    # quoted on purpose' in second
    removed = remove_entry(TWO_DOCUMENTS, "two", "203.0.113.1")
    assert _changed(TWO_DOCUMENTS, removed) == ['-  - ip: "203.0.113.1"    # quoted on purpose']
    emptied = remove_entry(removed, "two", "203.0.113.2")
    assert list(YAML(typ="safe").load_all(emptied))[1]["spec"]["entries"] == []


@given(st.text(min_size=1, max_size=40).filter(lambda t: t.strip() == t and "\x00" not in t))
@example("0\x850")  # a NEL inside: ruamel writes it raw in single quotes, where it reads back as a space
@example('say "hi"\u2028\\ \x7f\ufeff end')
def test_any_comment_round_trips(comment: str) -> None:
    after = add_entry(PARTNERS, "partners", Entry("ip", "203.0.113.50", comment=comment))
    assert parse_entries(after, "partners")[-1]["comment"] == comment


FLOW_ENTRIES = """apiVersion: reconciler/v1
kind: EgressAllowList
metadata: {name: flow}
spec:
  entries:
    - {ip: 203.0.113.1}
    - {domain: api.partner.example, ports: [443], protocol: tcp}
"""


def test_an_entry_added_to_one_line_entries_is_one_line_too() -> None:
    """The console followed block style whatever the list's own; it now writes as the last entry is written."""
    entry = Entry("domain", "new.partner.example", ("443",), "tcp", True, "2027-06-30", "a, b: {c} # d")
    after = add_entry(FLOW_ENTRIES, "flow", entry)
    assert _changed(FLOW_ENTRIES, after) == [
        "+    - {domain: new.partner.example, ports: [443], protocol: tcp, protected: true, expires: 2027-06-30, "
        'comment: "a, b: {c} # d"}'
    ]
    added = parse_entries(after, "flow")[-1]
    assert (added["domain"], added["comment"], added["protected"]) == ("new.partner.example", "a, b: {c} # d", True)


@given(st.text(min_size=1, max_size=40).filter(lambda t: t.strip() == t and "\x00" not in t))
def test_any_comment_round_trips_in_a_one_line_entry(comment: str) -> None:
    after = add_entry(FLOW_ENTRIES, "flow", Entry("ip", "203.0.113.50", comment=comment))
    assert parse_entries(after, "flow")[-1]["comment"] == comment
    assert len(_changed(FLOW_ENTRIES, after)) == 1


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


POOL = (EXAMPLE / "pools" / "egress-pool.yaml").read_text()
EDGES = (EXAMPLE / "edges" / "example-org.yaml").read_text()
BLOCK_BANNED = """kind: IPPool
metadata: {name: p}
spec:
  strategy: s
  banned:
    - 203.0.113.1   # first
    - 203.0.113.2
  history: 10
"""


def test_bans_and_releases_touch_the_banned_list_only() -> None:
    banned = set_banned(POOL, "egress", "203.0.113.99", True)
    assert _changed(POOL, banned) == ["-  banned: [203.0.113.9]", "+  banned: [203.0.113.9, 203.0.113.99]"]
    assert set_banned(banned, "egress", "203.0.113.99", False) == POOL
    with pytest.raises(EditError) as twice:
        set_banned(POOL, "egress", "203.0.113.9", True)
    assert twice.value.status == 409
    block = set_banned(BLOCK_BANNED, "p", "203.0.113.3", True)
    assert _changed(BLOCK_BANNED, block) == ["+    - 203.0.113.3"]
    released = set_banned(BLOCK_BANNED, "p", "203.0.113.1", False)
    assert _changed(BLOCK_BANNED, released) == ["-    - 203.0.113.1   # first"]
    fresh = set_banned("kind: IPPool\nmetadata: {name: q}\nspec:\n  strategy: s\n", "q", "2001:db8::5", True)
    assert YAML(typ="safe").load(fresh)["spec"]["banned"] == ["2001:db8::5"]


def test_an_edge_mode_needs_its_comment_and_changes_one_line() -> None:
    with pytest.raises(EditError, match="the comment is required"):
        set_edge_mode(EDGES, "example-org", "edge2.example.net", "unavailable", " ")
    with pytest.raises(EditError) as unknown:
        set_edge_mode(EDGES, "example-org", "edge9.example.net", "force", "x")
    assert unknown.value.status == 404
    down = set_edge_mode(EDGES, "example-org", "edge2.example.net", "unavailable", 'disk "sdb", again')
    assert _changed(EDGES, down) == [
        "-    - edge2.example.net",
        '+    - {host: edge2.example.net, mode: unavailable, comment: "disk \\"sdb\\", again"}',
    ]
    edge = YAML(typ="safe").load(down)["spec"]["edges"][1]
    assert edge == {"host": "edge2.example.net", "mode": "unavailable", "comment": 'disk "sdb", again'}
    back = set_edge_mode(down, "example-org", "edge2.example.net", "available", "")
    assert back == EDGES


@given(st.text(min_size=1, max_size=40).filter(lambda t: t.strip() == t and "\x00" not in t))
@example("rack move \U0001f69a, back Monday")  # JSON would write a surrogate pair, which YAML refuses
@example("a\x85b\u2028c")
def test_any_edge_mode_comment_round_trips(comment: str) -> None:
    down = set_edge_mode(EDGES, "example-org", "edge2.example.net", "unavailable", comment)
    [document] = [d for d in read_yaml(down) if d.data and d.data.get("kind") == "EdgeNetwork"]
    assert document.data["spec"]["edges"][1] == {"host": "edge2.example.net", "mode": "unavailable", "comment": comment}


def test_a_unicode_name_and_its_a_label_are_one_destination() -> None:
    """The agent stores bücher.example as xn--bcher-kva.example, and status and the API show that form: adding
    either when the other is listed is a duplicate, and removing by the shown form finds the written one."""
    added = add_entry(PARTNERS, "partners", Entry("domain", "bücher.example", comment="books"))
    for again in ("xn--bcher-kva.example", "BÜCHER.example."):
        with pytest.raises(EditError) as duplicate:
            add_entry(added, "partners", Entry("domain", again))
        assert duplicate.value.status == 409
    assert remove_entry(added, "partners", "xn--bcher-kva.example") == PARTNERS
    with pytest.raises(EditError):
        remove_entry(added, "partners", "xn--bcher-kva.example.invalid")


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
    assert _changed(pool, banned) == ["+    - 203.0.113.3"]  # (_changed compares lines without their ends)
    mixed = PARTNERS.replace("\n", "\r\n", 1)  # both endings: edited as it is, nothing else rewritten
    assert add_entry(mixed, "partners", Entry("ip", "203.0.113.50")).startswith(mixed.split("\n", 2)[0])
