"""EgressAllowList edits on the text of a YAML file: an added or removed entry changes only its own lines (comments,
quoting, order and blank lines elsewhere kept byte for byte); protected entries cannot be removed; duplicates are
refused; an empty list, a multi-document file and values that need quoting are handled; the result always parses."""

from __future__ import annotations

import difflib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.console.allow_list_edits import Entry, add_entry, parse_entries, remove_entry
from reconciler.console.edits import EditError
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


def changed(before: str, after: str) -> list[str]:
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
    assert changed(PARTNERS, after) == [
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
    assert changed(PARTNERS, after) == ["-    - ip: 203.0.113.7", "-      comment: partner's fixed webhook sender"]
    last = remove_entry(PARTNERS, "partners", "PROMO.partner.example.")  # names compare as names
    assert len(changed(PARTNERS, last)) == 5
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
    assert changed(TWO_DOCUMENTS, first) == [
        "-  entries: []   # nothing yet",
        "+  entries:   # nothing yet",
        "+    - ip: 203.0.113.9",
    ]
    second = add_entry(TWO_DOCUMENTS, "two", Entry("ip", "2001:db8::1"))
    assert changed(TWO_DOCUMENTS, second) == ["+  - ip: 2001:db8::1"]
    assert '  - ip: "203.0.113.1"    # quoted on purpose' in second
    removed = remove_entry(TWO_DOCUMENTS, "two", "203.0.113.1")
    assert changed(TWO_DOCUMENTS, removed) == ['-  - ip: "203.0.113.1"    # quoted on purpose']
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
    assert changed(FLOW_ENTRIES, after) == [
        "+    - {domain: new.partner.example, ports: [443], protocol: tcp, protected: true, expires: 2027-06-30, "
        'comment: "a, b: {c} # d"}'
    ]
    added = parse_entries(after, "flow")[-1]
    assert (added["domain"], added["comment"], added["protected"]) == ("new.partner.example", "a, b: {c} # d", True)


@given(st.text(min_size=1, max_size=40).filter(lambda t: t.strip() == t and "\x00" not in t))
def test_any_comment_round_trips_in_a_one_line_entry(comment: str) -> None:
    after = add_entry(FLOW_ENTRIES, "flow", Entry("ip", "203.0.113.50", comment=comment))
    assert parse_entries(after, "flow")[-1]["comment"] == comment
    assert len(changed(FLOW_ENTRIES, after)) == 1


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
