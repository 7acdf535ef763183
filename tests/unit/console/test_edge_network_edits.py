"""EdgeNetwork edits: an edge's mode needs its comment and changes one line; any comment round-trips."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.console.edge_network_edits import set_edge_mode
from reconciler.console.edits import EditError
from reconciler.loading.yaml_reader import read_yaml
from tests.conftest import EXAMPLE
from tests.unit.console.test_allow_list_edits import changed

EDGES = (EXAMPLE / "edges" / "example-org.yaml").read_text()


def test_an_edge_mode_needs_its_comment_and_changes_one_line() -> None:
    with pytest.raises(EditError, match="the comment is required"):
        set_edge_mode(EDGES, "example-org", "edge2.example.net", "unavailable", " ")
    with pytest.raises(EditError) as unknown:
        set_edge_mode(EDGES, "example-org", "edge9.example.net", "force", "x")
    assert unknown.value.status == 404
    down = set_edge_mode(EDGES, "example-org", "edge2.example.net", "unavailable", 'disk "sdb", again')
    assert changed(EDGES, down) == [
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
