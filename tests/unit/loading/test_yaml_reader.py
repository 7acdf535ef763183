"""The YAML reader: YAML 1.2 values, anchors and merges, positions, and the limits against hostile input."""

from __future__ import annotations

import datetime

import pytest

from reconciler.loading.yaml_reader import YamlError, YamlLimits, read_yaml


def test_values_follow_yaml_1_2() -> None:
    """yes/no stay strings (YAML 1.2), dates become dates, numbers numbers, ~ is null."""
    [document] = read_yaml("a: yes\nb: 2027-01-31\nc: 0x1f\nd: 1_000\ne: 1.5\nf: ~\ng: true\nh: '443'\ni: .inf\n")
    assert document.data == {
        "a": "yes",
        "b": datetime.date(2027, 1, 31),
        "c": 31,
        "d": 1000,
        "e": 1.5,
        "f": None,
        "g": True,
        "h": "443",
        "i": float("inf"),
    }


def test_anchors_aliases_and_merge_keys() -> None:
    """Aliases share the anchored value; '<<' merges a mapping, explicit keys winning."""
    text = "base: &b {ports: [443], protocol: tcp}\nentry:\n  <<: *b\n  protocol: udp\nsame: *b\n"
    [document] = read_yaml(text)
    assert document.data["entry"] == {"ports": [443], "protocol": "udp"}
    assert document.data["same"] is document.data["base"]


def test_multiple_documents_keep_their_start_lines() -> None:
    """Each document knows its index and where it starts."""
    documents = read_yaml("a: 1\n---\n# comment\nb: 2\n---\n")
    assert [(d.index, d.data) for d in documents] == [(0, {"a": 1}), (1, {"b": 2}), (2, None)]
    assert documents[1].line == 2


def test_positions_point_at_values_and_keys() -> None:
    """Located reads map a path to the value (scalars) or the key (mappings, lists, unknown fields)."""
    [document] = read_yaml("spec:\n  entries:\n    - ip: 1.2.3.4\n      ports: [1, 2]\n", located=True)
    assert document.positions is not None
    locate = document.positions.locate
    assert locate(document.data, ("spec", "entries", 0, "ip"))[0] == (3, 11)
    assert locate(document.data, ("spec", "entries", 0, "ports", 1))[0] == (4, 18)
    assert locate(document.data, ("spec", "entries"))[0] == (2, 3)
    assert locate(document.data, ("spec", "entries", 0, "ip"), at_key=True)[0] == (3, 7)
    assert locate(document.data, ("spec", "missing")) == ((1, 1), 1)


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("a: 1\nb: 2\na: 3\n", "duplicate key 'a'", 3),
        ("a: [1\nb: 2\n", "this '[' is never closed", 1),
        ("a:\n\tb: 2\n", "YAML does not allow tabs", 2),
        ("a: *nothing\n", "no anchor", 1),
        ("a: !custom 1\n", "unsupported tag", 1),
        ("a: !!binary aGk=\n", "unsupported tag", 1),
        ("? {x: 1}\n: 2\n", "plain value", 1),
        ("a: \x07\n", "control characters", 1),
    ],
)
def test_refusals_are_located(text: str, fragment: str, line: int) -> None:
    """Everything refused names its line."""
    refusal = _refused(text)
    assert fragment in refusal.message
    assert refusal.line == line


def _refused(text: str, limits: YamlLimits | None = None) -> YamlError:
    """The syntax error that stopped the file, or the first document's own refusal."""
    try:
        documents = read_yaml(text, limits=limits)
    except YamlError as exc:
        return exc
    refusals = [d.error for d in documents if d.error is not None]
    assert refusals, "not refused"
    return refusals[0]


def test_a_refused_document_leaves_the_others_readable() -> None:
    """A duplicate key in the first document: it carries the error; the second is read as usual."""
    first, second = read_yaml("a: 1\na: 2\n---\nb: 3\n")
    assert first.error is not None
    assert (first.data, first.error.line) == (None, 2)
    assert (second.data, second.error) == ({"b": 3}, None)


def test_alias_expansion_is_bounded() -> None:
    """A 'billion laughs' document is refused before it is expanded."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    refusal = _refused("\n".join(levels) + "\n", limits=YamlLimits(max_nodes=1000))
    assert "expands to more than 1000 values" in refusal.message


def test_depth_is_bounded() -> None:
    """Deep nesting is refused (no recursion limit crash)."""
    refusal = _refused("a: " + "[" * 20 + "]" * 20 + "\n", limits=YamlLimits(max_depth=10))
    assert "nested deeper than 10 levels" in refusal.message
