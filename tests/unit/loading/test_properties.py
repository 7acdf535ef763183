"""Property-based: whatever the text, the loader answers with its own error type or a state, nothing else."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import DesiredStateError
from reconciler.loading.loader import load_desired_state
from reconciler.model.source_tree import SourceFile, SourceTree
from tests.conftest import EXAMPLE

EXAMPLE_TEXTS = [p.read_text() for p in sorted(EXAMPLE.rglob("*.yaml"))]
OTHER_PATHS = frozenset(p.relative_to(EXAMPLE).as_posix() for p in EXAMPLE.rglob("*") if p.suffix != ".yaml")

FRAGMENTS = [
    "",
    "-",
    ":",
    "[",
    "]",
    "{",
    "}",
    "*a",
    "&a",
    "!!str",
    "\t",
    "'",
    '"',
    "10.0.0.1",
    "0.0.0.0/0",
    "65536",
    "5m",
    "-1",
    "null",
    "~",
    "yes",
    "2027-02-30",
    "\x00",
    "\ufeff",
    "é",
    "<<: *a",
    "---",
    "...",
    "? ",
    "|",
    "[*]",
    "{ip: 1}",
    "*.*",
    "0x",
    "1e400",
    ".nan",
    "9" * 50,
]


def _load(text: str | bytes) -> None:
    content = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    tree = SourceTree("t", (SourceFile("t/a.yaml", "a.yaml", content),), OTHER_PATHS)
    try:
        result = load_desired_state(tree)
    except DesiredStateError as exc:
        for problem in exc.problems:
            assert problem.line >= 1
            assert problem.column >= 1
            assert problem.message
    else:
        assert result.documents >= 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_never_escapes(text: str) -> None:
    """Arbitrary text raises nothing but DesiredStateError."""
    _load(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape(data: bytes) -> None:
    """Arbitrary bytes (not UTF-8, BOMs, NULs) raise nothing but DesiredStateError."""
    _load(data)


def _mutate(text: str, rng: random.Random, count: int) -> str:
    lines = text.splitlines()
    for _ in range(count):
        if not lines:
            break
        index = rng.randrange(len(lines))
        action = rng.randrange(5)
        if action == 0:
            del lines[index]
        elif action == 1:
            lines.insert(index, lines[rng.randrange(len(lines))])
        elif action == 2 and ":" in lines[index]:
            key, _, _ = lines[index].partition(":")
            lines[index] = f"{key}: {rng.choice(FRAGMENTS)}"
        elif action == 3:
            position = rng.randrange(len(lines[index]) + 1)
            lines[index] = lines[index][:position] + rng.choice(FRAGMENTS) + lines[index][position:]
        else:
            lines[index] = " " * rng.randrange(4) + lines[index].lstrip()
    return "\n".join(lines) + "\n"


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(EXAMPLE_TEXTS), st.randoms(use_true_random=False), st.integers(min_value=1, max_value=6))
def test_mutated_examples_never_escape(text: str, rng: random.Random, count: int) -> None:
    """Random edits of the real example documents (deleted, duplicated, re-indented lines, hostile values)
    raise nothing but DesiredStateError."""
    _load(_mutate(text, rng, count))
